"""The access token is checked at the edge: what gets through, what is 401, what is 503."""

import time
from typing import Any

import httpx
import pytest
from momentum_libs.testing.plugin import OwnRedis
from momentum_libs.testing.tokens import TestSigner
from momentum_libs.tokens import SessionRevocations
from redis.asyncio import Redis

from .conftest import (
    StartGateway,
    Upstream,
    assert_problem,
    bearer,
    hs256_with_public_key,
    unsigned_token,
)

PROTECTED = [
    ("GET", "/auth/me"),
    ("POST", "/auth/logout"),
    ("GET", "/users/me"),
    ("DELETE", "/users/me"),
    ("GET", "/goals"),
    ("POST", "/weekly-targets"),
    ("GET", "/daily-logs"),
    ("GET", "/analytics/dashboard"),
]


def assert_unauthorized(response: httpx.Response) -> str:
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    return str(body["detail"])


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_routes_need_a_token(
    gw: httpx.Client, upstreams: dict[str, Upstream], method: str, path: str
) -> None:
    before = sum(u.hits["echo"] for u in upstreams.values())
    assert_unauthorized(gw.request(method, path))
    assert sum(u.hits["echo"] for u in upstreams.values()) == before


def test_a_valid_token_gets_through(gw: httpx.Client, signer: TestSigner) -> None:
    response = gw.get("/goals/g1", headers=bearer(signer.mint()))
    assert response.status_code == 200
    assert response.json()["service"] == "tracking"


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer  x y",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Token abc.def.ghi",
    ],
)
def test_malformed_authorization_is_401(gw: httpx.Client, authorization: str) -> None:
    assert_unauthorized(gw.get("/goals", headers={"Authorization": authorization}))


def test_wrong_signature_is_401(gw: httpx.Client, signer: TestSigner) -> None:
    impostor = TestSigner()
    impostor.kid = signer.kid  # same key id, another private key
    assert_unauthorized(gw.get("/goals", headers=bearer(impostor.mint())))


def test_tampered_payload_is_401(gw: httpx.Client, signer: TestSigner) -> None:
    header, payload, signature = signer.mint().split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert_unauthorized(gw.get("/goals", headers=bearer(f"{header}.{flipped}.{signature}")))


def test_unknown_key_id_is_401(gw: httpx.Client) -> None:
    assert_unauthorized(gw.get("/goals", headers=bearer(TestSigner().mint())))


def test_alg_none_is_401(gw: httpx.Client, signer: TestSigner) -> None:
    detail = assert_unauthorized(gw.get("/goals", headers=bearer(unsigned_token(signer))))
    assert "algorithm" in detail


def test_hs256_signed_with_the_public_key_is_401(gw: httpx.Client, signer: TestSigner) -> None:
    detail = assert_unauthorized(gw.get("/goals", headers=bearer(hs256_with_public_key(signer))))
    assert "algorithm" in detail


def test_expired_token_is_401(gw: httpx.Client, signer: TestSigner) -> None:
    detail = assert_unauthorized(gw.get("/goals", headers=bearer(signer.mint(ttl_s=-60))))
    assert "expired" in detail


@pytest.mark.parametrize(
    "claims",
    [{"iss": "someone-else"}, {"aud": "another-app"}, {"token_use": "refresh"}],
)
def test_wrong_issuer_audience_or_use_is_401(
    gw: httpx.Client, signer: TestSigner, claims: dict[str, Any]
) -> None:
    assert_unauthorized(gw.get("/goals", headers=bearer(signer.mint(**claims))))


def test_token_missing_a_required_claim_is_401(gw: httpx.Client, signer: TestSigner) -> None:
    token = signer.mint(sid=None)  # a null session id is no session id
    assert_unauthorized(gw.get("/goals", headers=bearer(token)))
    future = signer.mint(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200)
    assert_unauthorized(gw.get("/goals", headers=bearer(future)))


async def test_revoked_session_is_401_at_once(
    gateway_url: str, signer: TestSigner, redis_url: str
) -> None:
    session_id = f"sess-{time.time_ns()}"
    token = signer.mint(session_id=session_id)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=15) as client:
        assert (await client.get("/goals", headers=bearer(token))).status_code == 200
        redis = Redis.from_url(redis_url)
        try:
            await SessionRevocations(redis, keep_seconds=60).revoke(session_id)
        finally:
            await redis.aclose()
        response = await client.get("/goals", headers=bearer(token))
    detail = assert_unauthorized(response)
    assert "session" in detail


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login", "/auth/refresh"])
def test_public_auth_routes_need_no_token(
    gw: httpx.Client, upstreams: dict[str, Upstream], path: str
) -> None:
    response = gw.post(path, json={"email": "a@example.com", "password": "secret secret"})
    assert response.status_code == 200, response.text
    assert "www-authenticate" not in response.headers


def test_public_route_passes_a_bad_token_on_untouched(gw: httpx.Client) -> None:
    echo = gw.post("/auth/refresh", json={}, headers={"Authorization": "Bearer junk"}).json()
    assert echo["service"] == "auth"
    assert ["authorization", "Bearer junk"] in echo["headers"]


def test_public_paths_are_exact(gw: httpx.Client) -> None:
    assert_unauthorized(gw.post("/auth/login/extra", json={}))
    assert_unauthorized(gw.post("/auth/loginx", json={}))


def test_gateway_routes_need_no_token(gw: httpx.Client) -> None:
    for path in ("/health", "/health/db", "/openapi.json", "/docs"):
        assert gw.get(path).status_code == 200, path


def test_keys_are_fetched_once_not_per_request(
    start_gateway: StartGateway, signer: TestSigner, upstreams: dict[str, Upstream]
) -> None:
    client = start_gateway()
    before = upstreams["auth"].hits["jwks"]
    for _ in range(10):
        assert client.get("/goals", headers=bearer(signer.mint())).status_code == 200
    assert upstreams["auth"].hits["jwks"] - before == 1


def test_redis_down_fails_closed_with_503(
    start_gateway: StartGateway, signer: TestSigner, own_redis: OwnRedis
) -> None:
    client = start_gateway(redis_url=own_redis.url)
    token = signer.mint()
    assert client.get("/goals", headers=bearer(token)).status_code == 200
    own_redis.stop()
    response = client.get("/goals", headers=bearer(token))
    assert_problem(response, 503)
    assert response.headers["retry-after"]
    # Public routes do not ask Redis, so they still work.
    assert client.post("/auth/login", json={"email": "a@x.io", "password": "p"}).status_code == 200
    own_redis.start()
    assert client.get("/goals", headers=bearer(token)).status_code == 200
