"""The access-token verifier and the JWKS key cache, with real Redis and a real HTTP server."""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from momentum_libs.deps import verify_bearer
from momentum_libs.problems import ProblemError
from momentum_libs.stores import free_port
from momentum_libs.testing.plugin import OwnRedis
from momentum_libs.testing.tokens import TestSigner
from momentum_libs.tokens import (
    REQUIRED_CLAIMS,
    AccessTokenVerifier,
    JwksKeys,
    KeysUnavailableError,
    RevocationUnavailableError,
    SessionRevocations,
    StaticKeys,
    TokenInvalidError,
)
from redis.asyncio import Redis

ISSUER, AUDIENCE = "momentum-auth", "momentum"


@pytest.fixture
def signer() -> TestSigner:
    return TestSigner(ISSUER, AUDIENCE)


@pytest.fixture
def revocations(redis: Redis, namespace: str) -> SessionRevocations:
    return SessionRevocations(redis, keep_seconds=60, prefix=f"{namespace}revoked:")


@pytest.fixture
def verifier(signer: TestSigner, revocations: SessionRevocations) -> AccessTokenVerifier:
    return AccessTokenVerifier(signer.keys, ISSUER, AUDIENCE, revocations)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "sid": "session-1",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 900,
        "token_use": "access",
    }
    base.update(overrides)
    return base


def sign(signer: TestSigner, body: dict[str, Any], **headers: Any) -> str:
    """An EdDSA token signed by hand, so headers PyJWT would refuse to write can be tried."""
    header = {"alg": "EdDSA", "typ": "JWT", "kid": signer.kid, **headers}
    header = {k: v for k, v in header.items() if v is not None}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    return f"{signing_input}.{b64(signer.private_key.sign(signing_input.encode()))}"


async def refused(verifier: AccessTokenVerifier, token: str) -> str:
    with pytest.raises(TokenInvalidError) as caught:
        await verifier.verify(token)
    return str(caught.value)


async def test_a_token_of_the_signer_is_accepted(
    verifier: AccessTokenVerifier, signer: TestSigner
) -> None:
    token = signer.mint("user-7", "session-7")
    found = await verifier.verify(token)
    assert found.user_id == "user-7"
    assert found.session_id == "session-7"
    assert found.expires_at > time.time()
    assert found.token_id == jwt.decode(token, options={"verify_signature": False})["jti"]


async def test_alg_none_is_refused(verifier: AccessTokenVerifier, signer: TestSigner) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": signer.kid}
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}."
    assert await refused(verifier, token) == "token algorithm not accepted"


async def test_hs256_signed_with_the_public_key_is_refused(
    verifier: AccessTokenVerifier, signer: TestSigner
) -> None:
    """Algorithm confusion: the public key is no secret, so an HMAC with it proves nothing."""
    public = signer.private_key.public_key()
    for secret in (
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        json.dumps(signer.jwks["keys"][0]).encode(),
    ):
        header = {"alg": "HS256", "typ": "JWT", "kid": signer.kid}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert await refused(verifier, f"{signing_input}.{b64(mac)}") == (
            "token algorithm not accepted"
        )


async def test_a_tampered_token_is_refused(
    verifier: AccessTokenVerifier, signer: TestSigner
) -> None:
    header, _, signature = signer.mint("user-1").split(".")
    forged = b64(json.dumps(claims(sub="admin")).encode())
    assert await refused(verifier, f"{header}.{forged}.{signature}") == "token is not valid"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "..."])
async def test_malformed_tokens_are_refused(verifier: AccessTokenVerifier, token: str) -> None:
    assert await refused(verifier, token) == "malformed token"


async def test_an_expired_token_is_refused(
    verifier: AccessTokenVerifier, signer: TestSigner
) -> None:
    assert await refused(verifier, signer.mint(ttl_s=-60)) == "token has expired"


@pytest.mark.parametrize(
    "overrides",
    [
        {"iat": int(time.time()) + 3600},  # issued in the future
        {"nbf": int(time.time()) + 3600},  # not valid yet
        {"iat": "yesterday"},
        {"exp": "never"},
    ],
    ids=["iat-future", "nbf-future", "iat-not-a-number", "exp-not-a-number"],
)
async def test_a_token_not_valid_yet_or_with_bad_times_is_refused(
    verifier: AccessTokenVerifier, signer: TestSigner, overrides: dict[str, Any]
) -> None:
    assert await refused(verifier, sign(signer, claims(**overrides))) in (
        "token is not valid",
        "token has expired",
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "someone-else"}, "token is not valid"),
        ({"aud": "another-api"}, "token is not valid"),
        ({"token_use": "refresh"}, "not an access token"),
        ({"token_use": "id"}, "not an access token"),
    ],
    ids=["wrong-iss", "wrong-aud", "refresh-use", "id-use"],
)
async def test_wrong_issuer_audience_or_use_is_refused(
    verifier: AccessTokenVerifier, signer: TestSigner, overrides: dict[str, Any], reason: str
) -> None:
    assert await refused(verifier, signer.mint(**overrides)) == reason


async def test_a_hand_signed_token_with_every_claim_is_accepted(
    verifier: AccessTokenVerifier, signer: TestSigner
) -> None:
    # The refusals below are of the claim or header changed, not of the hand signing.
    assert (await verifier.verify(sign(signer, claims(sub="user-5")))).user_id == "user-5"
    assert (await verifier.verify(sign(signer, claims(), typ="at+jwt"))).user_id == "user-1"


@pytest.mark.parametrize("missing", REQUIRED_CLAIMS)
async def test_a_token_missing_a_required_claim_is_refused(
    verifier: AccessTokenVerifier, signer: TestSigner, missing: str
) -> None:
    body = claims()
    del body[missing]
    assert await refused(verifier, sign(signer, body)) == "token is not valid"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"typ": "refresh+jwt"}, "not an access token"),
        ({"typ": 7}, "not an access token"),  # not a string: refused, not a crash
        ({"kid": None}, "token has no key id"),
        ({"kid": "nobody-has-this-kid"}, "unknown signing key"),
    ],
    ids=["typ-refresh", "typ-number", "no-kid", "unknown-kid"],
)
async def test_bad_headers_are_refused(
    verifier: AccessTokenVerifier, signer: TestSigner, headers: dict[str, Any], reason: str
) -> None:
    assert await refused(verifier, sign(signer, claims(), **headers)) == reason


async def test_a_token_of_another_signer_is_refused(verifier: AccessTokenVerifier) -> None:
    stranger = TestSigner(ISSUER, AUDIENCE)
    assert await refused(verifier, stranger.mint()) == "unknown signing key"


async def test_a_key_under_a_known_kid_that_did_not_sign_is_refused(
    verifier: AccessTokenVerifier, signer: TestSigner
) -> None:
    stranger = TestSigner(ISSUER, AUDIENCE)
    token = jwt.encode(
        claims(), stranger.private_key, algorithm="EdDSA", headers={"kid": signer.kid}
    )
    assert await refused(verifier, token) == "token is not valid"


async def test_a_revoked_session_kills_its_tokens_but_not_others(
    verifier: AccessTokenVerifier, signer: TestSigner, revocations: SessionRevocations
) -> None:
    token = signer.mint("user-1", "session-a")
    other = signer.mint("user-1", "session-b")
    assert (await verifier.verify(token)).session_id == "session-a"
    await revocations.revoke("session-a")
    await revocations.revoke()  # nothing to revoke is fine
    assert await refused(verifier, token) == "session has ended"
    assert (await verifier.verify(other)).session_id == "session-b"


async def test_redis_down_fails_closed(own_redis: OwnRedis, signer: TestSigner) -> None:
    client = Redis.from_url(own_redis.url, socket_timeout=1, socket_connect_timeout=1)
    try:
        verifier = AccessTokenVerifier(
            signer.keys, ISSUER, AUDIENCE, SessionRevocations(client, keep_seconds=60)
        )
        token = signer.mint()
        assert (await verifier.verify(token)).user_id
        own_redis.stop()
        with pytest.raises(RevocationUnavailableError):
            await verifier.verify(token)
        with pytest.raises(ProblemError) as problem:
            await verify_bearer(verifier, f"Bearer {token}")
        assert problem.value.status == 503
        assert problem.value.headers == {"Retry-After": "5"}
    finally:
        await client.aclose()


async def test_unreachable_jwks_before_any_key_is_503_not_401(
    signer: TestSigner, redis_url: str
) -> None:
    """Auth-service down before the first fetch: the client's token may be good; say so."""
    async with httpx.AsyncClient() as http:
        keys = JwksKeys(f"http://127.0.0.1:{free_port()}/.well-known/jwks.json", http)
        client = Redis.from_url(redis_url)
        try:
            verifier = AccessTokenVerifier(
                keys, ISSUER, AUDIENCE, SessionRevocations(client, keep_seconds=60)
            )
            with pytest.raises(ProblemError) as problem:
                await verify_bearer(verifier, f"Bearer {signer.mint()}")
            assert problem.value.status == 503
        finally:
            await client.aclose()


@pytest.mark.parametrize(
    "header", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Bearer not-a-token"]
)
async def test_verify_bearer_answers_401_with_a_challenge(
    verifier: AccessTokenVerifier, header: str | None
) -> None:
    with pytest.raises(ProblemError) as problem:
        await verify_bearer(verifier, header)
    assert problem.value.status == 401
    assert problem.value.headers == {"WWW-Authenticate": "Bearer"}


async def test_verify_bearer_accepts_any_case_of_the_scheme(
    verifier: AccessTokenVerifier, signer: TestSigner
) -> None:
    claims_ = await verify_bearer(verifier, f"bearer {signer.mint('user-9')}")
    assert claims_.user_id == "user-9"


async def test_static_keys_know_only_their_keys(signer: TestSigner) -> None:
    keys = StaticKeys({signer.kid: jwt.PyJWK(signer.jwks["keys"][0])})
    assert (await keys(signer.kid)).key_id == signer.kid
    with pytest.raises(TokenInvalidError):
        await keys("other")


class JwksServer:
    """A real HTTP server (uvicorn, free port) serving a JWKS and counting fetches."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.fetches = 0
        self.failing = False
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/.well-known/jwks.json"
        app = FastAPI()

        @app.get("/.well-known/jwks.json")
        async def keys() -> JSONResponse:
            self.fetches += 1
            if self.failing:
                return JSONResponse({"detail": "down"}, status_code=503)
            return JSONResponse(self.jwks)

        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )


@pytest.fixture
async def jwks_server(signer: TestSigner) -> AsyncIterator[JwksServer]:
    server = JwksServer(signer.jwks)
    task = asyncio.create_task(server.server.serve())
    while not server.server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_jwks_keys_fetch_once_and_cache(
    jwks_server: JwksServer, signer: TestSigner, revocations: SessionRevocations
) -> None:
    async with httpx.AsyncClient() as client:
        keys = JwksKeys(jwks_server.url, client, cache_seconds=300, min_refetch_s=10)
        found = await asyncio.gather(*(keys(signer.kid) for _ in range(20)))
        assert {k.key_id for k in found} == {signer.kid}
        for _ in range(5):
            await keys(signer.kid)
        assert jwks_server.fetches == 1  # concurrent cold misses share one fetch

        verifier = AccessTokenVerifier(keys, ISSUER, AUDIENCE, revocations)
        assert (await verifier.verify(signer.mint("user-3"))).user_id == "user-3"
        assert jwks_server.fetches == 1


async def test_jwks_keys_refetch_unknown_kid_at_most_once_per_interval(
    jwks_server: JwksServer, signer: TestSigner
) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as client:
        keys = JwksKeys(jwks_server.url, client, cache_seconds=300, min_refetch_s=10, clock=clock)
        await keys(signer.kid)
        assert jwks_server.fetches == 1

        clock.now += 11
        for _ in range(5):  # forged kids: one refetch, then none until the interval passes
            with pytest.raises(TokenInvalidError, match="unknown signing key"):
                await keys("forged")
        assert jwks_server.fetches == 2

        # auth-service rotates its key: the new kid is learnt at the next allowed refetch.
        rotated = TestSigner(ISSUER, AUDIENCE)
        jwks_server.jwks = {"keys": [*signer.jwks["keys"], *rotated.jwks["keys"]]}
        clock.now += 5
        with pytest.raises(TokenInvalidError):
            await keys(rotated.kid)
        assert jwks_server.fetches == 2
        clock.now += 6
        assert (await keys(rotated.kid)).key_id == rotated.kid
        assert (await keys(signer.kid)).key_id == signer.kid
        assert jwks_server.fetches == 3


async def test_jwks_keys_refresh_when_stale_and_keep_serving_if_the_server_fails(
    jwks_server: JwksServer, signer: TestSigner
) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as client:
        keys = JwksKeys(jwks_server.url, client, cache_seconds=60, min_refetch_s=10, clock=clock)
        await keys(signer.kid)
        clock.now += 61
        await keys(signer.kid)
        assert jwks_server.fetches == 2  # stale: fetched again

        jwks_server.failing = True
        clock.now += 61
        for _ in range(10):  # the old keys keep serving; one failed attempt per interval
            assert (await keys(signer.kid)).key_id == signer.kid
        assert jwks_server.fetches == 3
        clock.now += 10
        await keys(signer.kid)
        assert jwks_server.fetches == 4


async def test_jwks_keys_unreachable_refuse_tokens(signer: TestSigner) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    async with httpx.AsyncClient() as client:
        keys = JwksKeys(nobody, client)
        with pytest.raises(KeysUnavailableError, match="signing keys unavailable"):
            await keys(signer.kid)
        with pytest.raises(KeysUnavailableError, match="signing keys unavailable"):
            await keys(signer.kid)


# -- remembered tokens: never past expiry or revocation ----------------------------------


class CountingKeys:
    def __init__(self, signer: TestSigner) -> None:
        self.signer = signer
        self.calls = 0

    async def __call__(self, kid: str) -> jwt.PyJWK:
        self.calls += 1
        return await self.signer.keys(kid)


def make(
    signer: TestSigner, revocations: SessionRevocations, max_remembered: int = 100
) -> tuple[AccessTokenVerifier, CountingKeys]:
    keys = CountingKeys(signer)
    verifier = AccessTokenVerifier(
        keys, signer.issuer, signer.audience, revocations, max_remembered=max_remembered
    )
    return verifier, keys


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens the verifier checked in full (signature and claims), in order."""
    checked: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr("momentum_libs.tokens.jwt.decode", counting_decode)
    return checked


async def test_a_verified_token_is_not_parsed_again(
    signer: TestSigner, revocations: SessionRevocations, decodes: list[str]
) -> None:
    verifier, keys = make(signer, revocations)
    token = signer.mint(user_id="u1")
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    assert first == second
    assert first.user_id == "u1"
    assert len(decodes) == 1
    assert keys.calls == 2  # the second only asks whether its key is still the one


async def test_a_remembered_token_dies_with_its_key_at_the_next_jwks_refresh(
    jwks_server: JwksServer, signer: TestSigner, revocations: SessionRevocations
) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as client:
        keys = JwksKeys(jwks_server.url, client, cache_seconds=300, min_refetch_s=10, clock=clock)
        verifier = AccessTokenVerifier(keys, ISSUER, AUDIENCE, revocations)
        token = signer.mint("user-1")
        await verifier.verify(token)

        # auth-service withdraws the key (leaked): its JWKS now holds only the new one.
        rotated = TestSigner(ISSUER, AUDIENCE)
        jwks_server.jwks = rotated.jwks
        clock.now += 299  # the keys held are still fresh: the bound is the JWKS cache
        assert (await verifier.verify(token)).user_id == "user-1"
        clock.now += 2
        with pytest.raises(TokenInvalidError, match="unknown signing key"):
            await verifier.verify(token)
        with pytest.raises(TokenInvalidError, match="unknown signing key"):
            await verifier.verify(token)  # forgotten, not served from memory again
        assert (await verifier.verify(rotated.mint("user-2"))).user_id == "user-2"


async def test_a_token_whose_key_was_refetched_is_checked_again_under_the_new_one(
    jwks_server: JwksServer,
    signer: TestSigner,
    revocations: SessionRevocations,
    decodes: list[str],
) -> None:
    """The kid still published, but the key object is new (every refresh builds them):
    the token is verified in full again, once, then remembered with the new key."""
    clock = Clock()
    async with httpx.AsyncClient() as client:
        keys = JwksKeys(jwks_server.url, client, cache_seconds=60, min_refetch_s=10, clock=clock)
        verifier = AccessTokenVerifier(keys, ISSUER, AUDIENCE, revocations)
        token = signer.mint("user-1")
        await verifier.verify(token)
        clock.now += 61
        assert (await verifier.verify(token)).user_id == "user-1"
        assert (await verifier.verify(token)).user_id == "user-1"
        assert jwks_server.fetches == 2
        assert decodes == [token, token]


async def test_revocation_applies_to_a_remembered_token(
    signer: TestSigner, revocations: SessionRevocations
) -> None:
    verifier, _ = make(signer, revocations)
    token = signer.mint(session_id="s-1")
    await verifier.verify(token)
    await revocations.revoke("s-1")
    with pytest.raises(TokenInvalidError, match="session"):
        await verifier.verify(token)


async def test_an_expired_token_is_never_served_from_memory(
    signer: TestSigner, revocations: SessionRevocations
) -> None:
    verifier, keys = make(signer, revocations)
    # Expired 2 s ago: still inside the verifier's 5 s leeway, so it passes, but only by
    # a full check each time.
    token = signer.mint(ttl_s=-2)
    await verifier.verify(token)
    await verifier.verify(token)
    assert keys.calls == 2
    with pytest.raises(TokenInvalidError, match="expired"):
        await verifier.verify(signer.mint(ttl_s=-60))


async def test_memory_is_bounded(
    signer: TestSigner, revocations: SessionRevocations, decodes: list[str]
) -> None:
    verifier, _ = make(signer, revocations, max_remembered=2)
    tokens = [signer.mint() for _ in range(3)]
    for token in tokens:
        await verifier.verify(token)
    assert decodes == tokens
    await verifier.verify(tokens[2])  # still remembered
    assert decodes == tokens
    await verifier.verify(tokens[0])  # pushed out by the third
    assert decodes == [*tokens, tokens[0]]


async def test_the_least_recently_used_token_is_forgotten_first(
    signer: TestSigner, revocations: SessionRevocations, decodes: list[str]
) -> None:
    verifier, _ = make(signer, revocations, max_remembered=2)
    first, second, third = (signer.mint() for _ in range(3))
    await verifier.verify(first)
    await verifier.verify(second)
    await verifier.verify(first)  # used again: now the newest
    await verifier.verify(third)  # pushes out the second, not the first
    await verifier.verify(first)
    assert decodes == [first, second, third]


async def test_a_refused_token_is_not_remembered(
    signer: TestSigner, revocations: SessionRevocations
) -> None:
    verifier, keys = make(signer, revocations)
    forged = signer.mint()[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(TokenInvalidError):
            await verifier.verify(forged)
    assert keys.calls == 2
