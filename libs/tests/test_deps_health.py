"""CurrentUser through a real app, and the health probes against real and dead stores."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from momentum_libs.app import create_service_app
from momentum_libs.background import BackgroundTasks
from momentum_libs.deps import CurrentUser
from momentum_libs.health import mongo_check, probe_all, redis_check
from momentum_libs.mongo import mongo_client
from momentum_libs.problems import PROBLEM_JSON
from momentum_libs.settings import ServiceSettings
from momentum_libs.state import ServiceState, health_router, install_state
from momentum_libs.stores import free_port
from momentum_libs.testing.tokens import TestSigner
from momentum_libs.tokens import AccessTokenVerifier, SessionRevocations
from redis.asyncio import Redis


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


async def test_current_user_accepts_a_token_and_answers_401_problems_otherwise(
    redis: Redis, namespace: str, mongodb_url: str
) -> None:
    signer = TestSigner()
    revocations = SessionRevocations(redis, 60, prefix=f"{namespace}revoked:")
    app = create_service_app("libs-test", ServiceSettings(), lifespan, title="deps")
    app.include_router(health_router)
    settings = ServiceSettings()
    mongo = mongo_client(mongodb_url, 2000)
    verifier = AccessTokenVerifier(signer.keys, signer.issuer, signer.audience, revocations)
    state = ServiceState(
        settings=settings,
        mongo=mongo,
        redis=redis,
        token_verifier=verifier,
        background=BackgroundTasks(),
    )
    install_state(app, state)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"user_id": user.user_id}

    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        token = signer.mint("user-42", "session-42")
        ok = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert ok.json() == {"user_id": "user-42"}

        for headers in ({}, {"Authorization": "Basic eDp5"}, {"Authorization": "Bearer junk"}):
            refused = await client.get("/me", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == PROBLEM_JSON
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["status"] == 401

        await revocations.revoke("session-42")
        ended = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert ended.status_code == 401
        assert "session has ended" in ended.json()["detail"]

        health = await client.get("/health/db")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "mongodb": "ok", "redis": "ok"}
    await mongo.close()


async def test_probes_report_ok_for_live_stores_and_down_for_dead_ones(
    redis: Redis, mongodb_url: str
) -> None:
    live_mongo = mongo_client(mongodb_url, 2000)
    dead_port = free_port()
    dead_mongo = mongo_client(f"mongodb://127.0.0.1:{dead_port}/", 300)
    dead_redis = Redis(port=dead_port, socket_connect_timeout=0.3, socket_timeout=0.3)
    try:
        assert await probe_all(
            {
                "mongo": mongo_check(live_mongo),
                "redis": redis_check(redis),
                "dead_mongo": mongo_check(dead_mongo),
                "dead_redis": redis_check(dead_redis),
            },
            timeout_s=5.0,
        ) == {"mongo": "ok", "redis": "ok", "dead_mongo": "down", "dead_redis": "down"}
    finally:
        await live_mongo.close()
        await dead_mongo.close()
        await dead_redis.aclose()
