"""POST /auth/login (JSON and form), the access token it mints, GET /auth/me."""

import time

import httpx
import jwt
from momentum_auth.settings import AuthSettings
from momentum_libs.tokens import AccessTokenVerifier, SessionRevocations
from redis.asyncio import Redis

from .conftest import (
    PASSWORD,
    SettingsFactory,
    assert_problem,
    bearer,
    login,
    register,
    running,
    unique_email,
)


async def test_login_with_json_and_with_the_oauth2_form(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"].upper())
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["refresh_token"] and tokens["access_token"]
    form = await client.post(
        "/auth/login",
        data={"username": user["email"], "password": PASSWORD, "grant_type": "password"},
    )
    assert form.status_code == 200, form.text
    assert form.headers["cache-control"] == "no-store"
    me = await client.get("/auth/me", headers=bearer(form.json()["access_token"]))
    assert me.status_code == 200
    assert me.json() == user


async def test_the_access_token_has_the_agreed_claims(client: httpx.AsyncClient) -> None:
    user = await register(client)
    token = (await login(client, user["email"]))["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) >= {"sub", "sid", "iss", "aud", "exp", "iat", "jti", "token_use"}
    assert claims["sub"] == user["id"]
    assert claims["token_use"] == "access"
    assert claims["iss"] == "momentum-auth" and claims["aud"] == "momentum"
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 30


async def test_the_libs_verifier_accepts_tokens_through_the_jwks(
    make_settings: SettingsFactory,
) -> None:
    settings: AuthSettings = make_settings()
    async with running(settings) as (_, client):
        user = await register(client)
        token = (await login(client, user["email"]))["access_token"]
        jwks = (await client.get("/.well-known/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"])  # public halves only
    keyset = jwt.PyJWKSet.from_dict(jwks)

    async def keys(kid: str) -> jwt.PyJWK:
        return next(k for k in keyset.keys if k.key_id == kid)

    redis = Redis.from_url(settings.redis_url)
    try:
        verifier = AccessTokenVerifier(
            keys, settings.jwt_issuer, settings.jwt_audience, SessionRevocations(redis, 60)
        )
        claims = await verifier.verify(token)
    finally:
        await redis.aclose()
    assert claims.user_id == user["id"]


async def test_wrong_password_and_unknown_email_answer_the_same(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    wrong = await client.post(
        "/auth/login", json={"email": user["email"], "password": "wrong password"}
    )
    unknown = await client.post("/auth/login", json={"email": unique_email(), "password": PASSWORD})
    first = assert_problem(wrong, 401)
    second = assert_problem(unknown, 401)
    assert first == second
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]


async def test_login_rejects_bad_bodies_with_422(client: httpx.AsyncClient) -> None:
    user = await register(client)
    extra = await client.post(
        "/auth/login", json={"email": user["email"], "password": PASSWORD, "remember": True}
    )
    assert assert_problem(extra, 422)["errors"][0]["loc"] == ["body", "remember"]
    missing = await client.post("/auth/login", json={"email": user["email"]})
    assert assert_problem(missing, 422)["errors"][0]["loc"] == ["body", "password"]
    form_missing = await client.post("/auth/login", data={"username": user["email"]})
    assert assert_problem(form_missing, 422)["errors"][0]["loc"] == ["body", "password"]
    garbage = await client.post(
        "/auth/login", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_problem(garbage, 422)


async def test_me_needs_a_valid_bearer_token(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, bearer("x")):
        response = await client.get("/auth/me", headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_json_body_nested_past_the_recursion_limit_is_422(
    client: httpx.AsyncClient,
) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 50_000 + b"1" + b"}" * 50_000):
        response = await client.post(
            "/auth/login", content=body, headers={"Content-Type": "application/json"}
        )
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["type"] == "json_invalid"
