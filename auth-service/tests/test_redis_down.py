"""Redis down: writes still succeed (events wait in the outbox), checks fail closed with 503."""

import time
import uuid

import jwt
from momentum_libs.events import EventType
from momentum_libs.stores import free_port
from pymongo import MongoClient

from .conftest import (
    PASSWORD,
    SettingsFactory,
    assert_problem,
    bearer,
    ed25519_pem,
    running,
    unique_email,
)
from .events import events_of


async def test_without_redis_register_works_and_its_event_waits(
    make_settings: SettingsFactory,
) -> None:
    pem = ed25519_pem()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(
        redis_url=dead, store_timeout_ms=2000, signing_key_pem=pem, signing_key_id="k1"
    )
    async with running(settings) as (_, client):
        email = unique_email()
        response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert response.status_code == 201, response.text
        user_id = response.json()["id"]
        # Logging in needs the throttle (Redis): 503 with Retry-After, never a 500 or a 200.
        login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert_problem(login, 503)
        assert int(login.headers["Retry-After"]) > 0
        # A well-signed token cannot be checked against revocations: fail closed.
        now = int(time.time())
        token = jwt.encode(
            {
                "iss": settings.jwt_issuer,
                "aud": settings.jwt_audience,
                "sub": user_id,
                "sid": uuid.uuid4().hex,
                "jti": uuid.uuid4().hex,
                "iat": now,
                "exp": now + 60,
                "token_use": "access",
            },
            pem,
            algorithm="EdDSA",
            headers={"kid": "k1"},
        )
        assert_problem(await client.get("/auth/me", headers=bearer(token)), 503)
    with MongoClient(settings.mongodb_url) as mongo:
        stored = mongo[settings.mongodb_db]["users"].find_one({"email": email})
    assert stored is not None
    assert stored["outbox_pending"]
    assert [e["type"] for e in stored["outbox"]] == ["user.registered"]
    # With Redis back, the relay publishes what waited.
    live = make_settings()
    async with running(live):
        found = await events_of(live, user_id, EventType.USER_REGISTERED)
    assert len(found) == 1
    assert found[0].typed_payload().timezone == "UTC"
