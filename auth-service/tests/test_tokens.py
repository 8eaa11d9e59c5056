"""Refresh rotation, reuse detection, logout, and tokens that must be refused."""

import asyncio
import base64
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from bson import ObjectId
from momentum_libs.testing.tokens import TestSigner
from pymongo import MongoClient

from .conftest import (
    SettingsFactory,
    assert_problem,
    bearer,
    ed25519_pem,
    login,
    new_account,
    running,
)


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient) -> None:
    acc = await new_account(client)
    response = await refresh(client, acc.refresh_token)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    pair = response.json()
    assert pair["refresh_token"] != acc.refresh_token
    assert pair["access_token"] != acc.access_token
    same_session = [
        jwt.decode(t, options={"verify_signature": False})["sid"]
        for t in (acc.access_token, pair["access_token"])
    ]
    assert same_session[0] == same_session[1]
    me = await client.get("/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    # The new refresh token rotates again.
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_reusing_a_spent_refresh_token_revokes_the_whole_session(
    make_settings: SettingsFactory,
) -> None:
    # No grace: the reuse right away is theft (test_refresh_grace.py: within a grace).
    async with running(make_settings(refresh_reuse_grace_seconds=0)) as (_, client):
        await _reuse_revokes_the_whole_session(client)


async def _reuse_revokes_the_whole_session(client: httpx.AsyncClient) -> None:
    acc = await new_account(client)
    other = await login(client, acc.email)  # another session of the same user
    pair = (await refresh(client, acc.refresh_token)).json()
    assert_problem(await refresh(client, acc.refresh_token), 401)  # theft
    # Every token of that session is dead: the rotated refresh token, every access token.
    assert_problem(await refresh(client, pair["refresh_token"]), 401)
    assert_problem(await client.get("/auth/me", headers=bearer(pair["access_token"])), 401)
    assert_problem(await client.get("/auth/me", headers=acc.headers), 401)
    # The other session is untouched.
    assert (await client.get("/auth/me", headers=bearer(other["access_token"]))).status_code == 200
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_unknown_or_malformed_refresh_tokens_are_refused(client: httpx.AsyncClient) -> None:
    assert_problem(await refresh(client, "not-a-token"), 401)
    assert_problem(await client.post("/auth/refresh", json={}), 422)
    extra = await client.post("/auth/refresh", json={"refresh_token": "x", "scope": "all"})
    assert_problem(extra, 422)


async def test_logout_kills_its_refresh_and_access_tokens_at_once(
    client: httpx.AsyncClient,
) -> None:
    acc = await new_account(client)
    other = await login(client, acc.email)
    response = await client.post(
        "/auth/logout", json={"refresh_token": acc.refresh_token}, headers=acc.headers
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(await client.get("/auth/me", headers=acc.headers), 401)
    assert_problem(await refresh(client, acc.refresh_token), 401)
    assert (await client.get("/auth/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_logout_needs_a_bearer_and_the_users_own_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    alice = await new_account(client)
    bob = await new_account(client)
    no_bearer = await client.post("/auth/logout", json={"refresh_token": alice.refresh_token})
    assert_problem(no_bearer, 401)
    # Bob cannot end Alice's session with his own access token.
    foreign = await client.post(
        "/auth/logout", json={"refresh_token": alice.refresh_token}, headers=bob.headers
    )
    assert_problem(foreign, 401)
    assert (await client.get("/auth/me", headers=alice.headers)).status_code == 200


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_tampered_alg_none_and_foreign_tokens_are_401(client: httpx.AsyncClient) -> None:
    acc = await new_account(client)
    header, _payload, signature = acc.access_token.split(".")
    claims = jwt.decode(acc.access_token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(acc.access_token)["kid"]
    tampered = f"{header}.{_b64({**claims, 'sub': '000000000000000000000000'})}.{signature}"
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}."
    bad_signature = acc.access_token[:-4] + (
        "AAAA" if not acc.access_token.endswith("AAAA") else "BBBB"
    )
    foreign = TestSigner().mint(claims["sub"], claims["sid"])  # right claims, unknown key
    hs256 = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": kid})
    for token in (tampered, alg_none, bad_signature, foreign, hs256):
        response = await client.get("/auth/me", headers=bearer(token))
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get("/auth/me", headers=acc.headers)).status_code == 200


async def test_expired_wrong_audience_and_refresh_as_access_are_401(
    make_settings: SettingsFactory,
) -> None:
    pem = ed25519_pem()
    settings = make_settings(signing_key_pem=pem, signing_key_id="test-key")
    async with running(settings) as (_, client):
        acc = await new_account(client)
        assert jwt.get_unverified_header(acc.access_token)["kid"] == "test-key"
        claims = jwt.decode(acc.access_token, options={"verify_signature": False})
        now = int(time.time())

        def sign(**changes: object) -> str:
            return jwt.encode(
                {**claims, "jti": uuid.uuid4().hex, **changes},
                pem,
                algorithm="EdDSA",
                headers={"kid": "test-key"},
            )

        assert (await client.get("/auth/me", headers=bearer(sign()))).status_code == 200
        for token in (
            sign(iat=now - 4000, exp=now - 3000),
            sign(aud="someone-else"),
            sign(iss="evil"),
            sign(token_use="refresh"),
        ):
            assert_problem(await client.get("/auth/me", headers=bearer(token)), 401)
        assert_problem(await client.get("/auth/me", headers=bearer(acc.refresh_token)), 401)


async def test_two_refreshes_racing_with_one_token_end_the_session(
    make_settings: SettingsFactory,
) -> None:
    async with running(make_settings(refresh_reuse_grace_seconds=0)) as (_, client):
        await _racing_refreshes_end_the_session(client)


async def _racing_refreshes_end_the_session(client: httpx.AsyncClient) -> None:
    acc = await new_account(client)
    first, second = await asyncio.gather(
        refresh(client, acc.refresh_token), refresh(client, acc.refresh_token)
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 401]  # exactly one spends it; the other is a reuse
    winner = first if first.status_code == 200 else second
    assert_problem(await client.get("/auth/me", headers=bearer(winner.json()["access_token"])), 401)
    assert_problem(await refresh(client, winner.json()["refresh_token"]), 401)


async def test_an_expired_refresh_token_is_refused(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with running(settings) as (_, client):
        acc = await new_account(client)
        fresh = await login(client, acc.email)
        with MongoClient(settings.mongodb_url, tz_aware=True) as mongo:
            tokens = mongo[settings.mongodb_db]["refresh_tokens"]
            token_hash = hashlib.sha256(acc.refresh_token.encode()).hexdigest()
            past = datetime.now(UTC) - timedelta(minutes=1)
            assert tokens.update_one({"_id": token_hash}, {"$set": {"expires_at": past}})
        assert_problem(await refresh(client, acc.refresh_token), 401)
        assert (await refresh(client, fresh["refresh_token"])).status_code == 200


async def test_a_session_expires_a_refresh_lifetime_after_its_newest_refresh_token(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(refresh_token_ttl_seconds=7200)
    async with running(settings) as (app, client):
        acc = await new_account(client)
        rotated = (await refresh(client, acc.refresh_token)).json()["refresh_token"]
        with MongoClient(settings.mongodb_url, tz_aware=True) as mongo:
            db = mongo[settings.mongodb_db]
            token = db["refresh_tokens"].find_one(
                {"_id": hashlib.sha256(rotated.encode()).hexdigest()}
            )
            assert token is not None
            session = db["sessions"].find_one({"_id": ObjectId(token["session_id"])})
            assert session is not None
            # A date (a TTL index ignores anything else), set when the newest token was.
            assert isinstance(session["refreshed_at"], datetime)
            issued = token["expires_at"] - timedelta(seconds=7200)
            assert abs(session["refreshed_at"] - issued) < timedelta(seconds=5)
            assert session["refreshed_at"] > session["created_at"] - timedelta(seconds=1)
        # The embedded server's TTL indexes are swept by the service (momentum_libs.expiry);
        # libs/tests/test_expiry.py tests the index MongoDB gets.
        expiries = app.state.service.expiries
        assert [(e.collection.name, e.field, e.after_s) for e in expiries.swept] == [
            ("refresh_tokens", "expires_at", 0),
            ("sessions", "refreshed_at", 7200 + 3600),
        ]


async def test_sessions_stored_before_refreshed_at_existed_get_one_at_start(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    with MongoClient(settings.mongodb_url, tz_aware=True) as mongo:
        sessions = mongo[settings.mongodb_db]["sessions"]
        old = sessions.insert_one({"user_id": "u-old", "created_at": datetime.now(UTC)})
    async with running(settings):
        with MongoClient(settings.mongodb_url, tz_aware=True) as mongo:
            doc = mongo[settings.mongodb_db]["sessions"].find_one({"_id": old.inserted_id})
    assert doc is not None and isinstance(doc["refreshed_at"], datetime)
