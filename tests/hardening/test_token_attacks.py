"""Token attacks through the gateway (and straight at the services): every one is a 401.

tests/test_auth_e2e.py already covers a tampered payload, ``alg=none`` with the real
claims, a cut signature, refresh-token reuse and logout on ``/auth/me``. Here: forged
tokens of every other kind, and revoked or orphaned sessions on EVERY service's routes.

Two kinds of forgery. Without the real key (what an attacker has): algorithm confusion
with the published public key, a fresh Ed25519 key claiming the real ``kid``. With the
real key, read from the dev data dir (what an attacker does NOT have, used here to prove
each claim check on its own: a validly signed token that is expired, not yet valid, for
another issuer or audience, a refresh token, missing a claim, ...).
"""

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from momentum_libs.devstack import Stack

from ..conftest import Account, assert_problem, login, new_account, past_refresh_grace

# One route of each service behind the gateway, all needing a token.
PROTECTED = ("/users/me", "/goals", "/daily-logs", "/analytics/dashboard", "/analytics/streak")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


HMACS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    mac = hmac.new(secret, signing_input.encode(), HMACS[header["alg"]]).digest()
    return f"{signing_input}.{_b64(mac)}"


def assert_refused(client: httpx.Client, token: str, paths: tuple[str, ...] = PROTECTED) -> None:
    for path in paths:
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), path


@pytest.fixture(scope="module")
def victim(stack: Stack) -> Iterator[tuple[Account, dict[str, Any], dict[str, Any]]]:
    """An account with a goal, its real token's claims and header."""
    with httpx.Client(base_url=stack.gateway_url, timeout=15) as client:
        account = new_account(client)
        goal = client.post("/goals", json={"title": "secret plans"}, headers=account.headers)
        assert goal.status_code == 201, goal.text
        claims = jwt.decode(account.access_token, options={"verify_signature": False})
        header = jwt.get_unverified_header(account.access_token)
        yield account, claims, header


@pytest.fixture(scope="module")
def jwks(stack: Stack) -> dict[str, Any]:
    response = httpx.get(f"{stack.url('auth')}/.well-known/jwks.json", timeout=10)
    assert response.status_code == 200
    keys: dict[str, Any] = response.json()
    return keys


@pytest.fixture(scope="module")
def real_key(stack: Stack) -> Ed25519PrivateKey:
    """auth-service's development signing key (created under the data dir on first start)."""
    pem = (stack.data_dir / "keys" / "ed25519-signing-key.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def test_the_real_token_works_everywhere(
    gateway: httpx.Client, victim: tuple[Account, dict[str, Any], dict[str, Any]]
) -> None:
    account, _, _ = victim
    for path in PROTECTED:
        assert gateway.get(path, headers=account.headers).status_code == 200, path


def test_algorithm_confusion_with_the_public_key_is_401(
    gateway: httpx.Client,
    victim: tuple[Account, dict[str, Any], dict[str, Any]],
    jwks: dict[str, Any],
) -> None:
    _, claims, header = victim
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    raw_public = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    public = jwt.PyJWK(jwk).key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secrets = [raw_public, pem, jwk["x"].encode(), json.dumps(jwk).encode()]
    tokens = [
        _hmac_token({**header, "alg": alg}, claims, secret) for secret in secrets for alg in HMACS
    ]
    tokens.append(_hmac_token({**header, "alg": "HS256", "kid": "x"}, claims, raw_public))
    for token in tokens:
        assert_refused(gateway, token)


def test_alg_none_variants_are_401(
    gateway: httpx.Client, victim: tuple[Account, dict[str, Any], dict[str, Any]]
) -> None:
    account, claims, header = victim
    real_signature = account.access_token.rsplit(".", 1)[1]
    for alg in ("none", "None", "NONE", "nOnE", ""):
        unsigned = f"{_segment({**header, 'alg': alg})}.{_segment(claims)}"
        for token in (f"{unsigned}.", f"{unsigned}.{real_signature}", unsigned):
            assert_refused(gateway, token, ("/goals", "/users/me"))


def test_a_fresh_key_claiming_the_real_kid_is_401(
    gateway: httpx.Client, victim: tuple[Account, dict[str, Any], dict[str, Any]]
) -> None:
    _, claims, header = victim
    forger = Ed25519PrivateKey.generate()
    now = int(time.time())
    variants = [
        claims,  # the very same claims, a signature by another key
        {**claims, "iss": "evil-issuer"},
        {**claims, "aud": "someone-else"},
        {**claims, "iat": now, "exp": now + 86_400 * 365},
        {**claims, "jti": uuid.uuid4().hex, "sid": uuid.uuid4().hex},
    ]
    for forged in variants:
        token = jwt.encode(forged, forger, algorithm="EdDSA", headers={"kid": header["kid"]})
        assert_refused(gateway, token)
    # An unknown kid (e.g. the forger's own) may make the gateway refetch the JWKS; still 401.
    assert_refused(
        gateway, jwt.encode(claims, forger, algorithm="EdDSA", headers={"kid": "forged-kid"})
    )


def _claims_variants(claims: dict[str, Any]) -> dict[str, dict[str, Any]]:
    now = int(time.time())
    missing = {
        f"no-{name}": {k: v for k, v in claims.items() if k != name}
        for name in ("exp", "iat", "iss", "aud", "sub", "sid", "jti")
    }
    return {
        "expired": {**claims, "iat": now - 3600, "exp": now - 60},
        "issued-in-the-future": {**claims, "iat": now + 3600, "exp": now + 4500},
        "not-before-in-the-future": {**claims, "nbf": now + 3600},
        "wrong-issuer": {**claims, "iss": "https://evil.example"},
        "wrong-audience": {**claims, "aud": "another-api"},
        "audience-list-without-ours": {**claims, "aud": ["another-api"]},
        "refresh-token-use": {**claims, "token_use": "refresh"},
        "id-token-use": {**claims, "token_use": "id"},
        "non-numeric-exp": {**claims, "exp": "tomorrow"},
        **missing,
    }


def test_validly_signed_tokens_with_bad_claims_are_401(
    gateway: httpx.Client,
    victim: tuple[Account, dict[str, Any], dict[str, Any]],
    real_key: Ed25519PrivateKey,
) -> None:
    account, claims, header = victim
    # Sanity: the key read from the data dir IS the real one (its token works).
    genuine = jwt.encode(claims, real_key, algorithm="EdDSA", headers={"kid": header["kid"]})
    assert gateway.get("/goals", headers={"Authorization": f"Bearer {genuine}"}).status_code == 200
    for name, forged in _claims_variants(claims).items():
        token = jwt.encode(forged, real_key, algorithm="EdDSA", headers={"kid": header["kid"]})
        try:
            assert_refused(gateway, token)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    for typ in ("refresh+jwt", "JOSE+JSON", "id+jwt"):
        token = jwt.encode(
            claims, real_key, algorithm="EdDSA", headers={"kid": header["kid"], "typ": typ}
        )
        assert_refused(gateway, token, ("/goals",))
    assert gateway.get("/goals", headers=account.headers).status_code == 200


def test_services_refuse_forged_tokens_without_the_gateway(
    stack: Stack,
    victim: tuple[Account, dict[str, Any], dict[str, Any]],
    real_key: Ed25519PrivateKey,
) -> None:
    """Defence in depth: a request reaching a service directly is checked again."""
    account, claims, header = victim
    expired = jwt.encode(
        {**claims, "exp": int(time.time()) - 60},
        real_key,
        algorithm="EdDSA",
        headers={"kid": header["kid"]},
    )
    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": header["kid"]}
    )
    for service, path in (
        ("auth", "/users/me"),
        ("tracking", "/goals"),
        ("analytics", "/analytics/dashboard"),
    ):
        url = stack.url(service) + path
        ok = httpx.get(url, headers=account.headers, timeout=10)
        assert ok.status_code == 200, (service, ok.text)
        for token in (expired, forged, account.refresh_token, "x"):
            response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert_problem(response, 401)
        spoofed = httpx.get(url, headers={"X-User-Id": str(account.user["id"])}, timeout=10)
        assert_problem(spoofed, 401)


def test_a_refresh_token_is_not_an_access_token(
    gateway: httpx.Client, victim: tuple[Account, dict[str, Any], dict[str, Any]]
) -> None:
    account, _, _ = victim
    assert_refused(gateway, account.refresh_token)
    # ... and an access token is not a refresh token.
    response = gateway.post("/auth/refresh", json={"refresh_token": account.access_token})
    assert_problem(response, 401)


def test_a_revoked_session_is_401_on_every_service(gateway: httpx.Client) -> None:
    account = new_account(gateway)
    other = login(gateway, account.email)  # a second session of the same user
    response = gateway.post(
        "/auth/logout", json={"refresh_token": account.refresh_token}, headers=account.headers
    )
    assert response.status_code == 204, response.text
    assert_refused(gateway, account.access_token)
    for path in PROTECTED:  # the other session is untouched
        headers = {"Authorization": f"Bearer {other['access_token']}"}
        assert gateway.get(path, headers=headers).status_code == 200, path
    # Theft detection (a spent refresh token replayed) revokes the session everywhere too.
    first = gateway.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert first.status_code == 200, first.text
    past_refresh_grace()
    replay = gateway.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert_problem(replay, 401)
    assert_refused(gateway, first.json()["access_token"])
    assert_refused(gateway, other["access_token"])


def test_a_deleted_users_tokens_are_401_on_every_service(gateway: httpx.Client) -> None:
    account = new_account(gateway)
    second = login(gateway, account.email)
    goal = gateway.post("/goals", json={"title": "soon gone"}, headers=account.headers)
    assert goal.status_code == 201, goal.text
    response = gateway.delete("/users/me", headers=account.headers)
    assert response.status_code == 204, response.text
    for token in (account.access_token, second["access_token"]):
        assert_refused(gateway, token)
    for refresh in (account.refresh_token, second["refresh_token"]):
        assert_problem(gateway.post("/auth/refresh", json={"refresh_token": refresh}), 401)


def test_malformed_authorization_headers_are_401(gateway: httpx.Client) -> None:
    for value in (
        "Bearer a.b",
        "Bearer a.b.c.d",
        "Bearer " + "A" * 8000,
        "Bearer ...",
        "Bearer eyJhbGciOiJFZERTQSJ9.e30.",
        "bearer",
        "Token abc",
        "Bearer \tx",
    ):
        response = gateway.get("/goals", headers={"Authorization": value})
        assert_problem(response, 401)
