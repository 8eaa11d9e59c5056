"""The tracking-service app: ``uvicorn --factory momentum_tracking.main:create_app``."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import structlog
from fastapi import FastAPI
from momentum_libs.app import create_service_app
from momentum_libs.background import BackgroundTasks, stop_background
from momentum_libs.consumer import StreamConsumer
from momentum_libs.mongo import init_documents, mongo_client
from momentum_libs.redis_client import redis_client
from momentum_libs.relay import OutboxRelay
from momentum_libs.state import ServiceState, install_state
from momentum_libs.tokens import AccessTokenVerifier, JwksKeys, KeyLookup, SessionRevocations

from momentum_tracking.goals.models import Goal
from momentum_tracking.goals.router import router as goals_router
from momentum_tracking.health import router as health_router
from momentum_tracking.logs.models import DailyLog, IdempotencyRecord
from momentum_tracking.logs.router import router as logs_router
from momentum_tracking.settings import TrackingSettings
from momentum_tracking.targets.models import WeeklyTarget
from momentum_tracking.targets.router import router as targets_router
from momentum_tracking.users.service import UserEventsHandler

log = structlog.get_logger(__name__)

OUTBOX_MODELS = (Goal, WeeklyTarget, DailyLog)
DOCUMENT_MODELS = (*OUTBOX_MODELS, IdempotencyRecord)


def create_app(
    settings: TrackingSettings | None = None, *, token_keys: KeyLookup | None = None
) -> FastAPI:
    settings = settings or TrackingSettings()
    http = httpx.AsyncClient()
    sessions_redis = redis_client(
        settings.sessions_redis_url or settings.redis_url, settings.store_timeout_ms
    )
    keys = token_keys or JwksKeys(settings.jwks_url, http, settings.jwks_cache_seconds)
    verifier = AccessTokenVerifier(
        keys,
        settings.jwt_issuer,
        settings.jwt_audience,
        # keep_seconds matters only to revoke(), which auth-service does, not us.
        SessionRevocations(sessions_redis, keep_seconds=3600),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = mongo_client(settings.mongodb_url, settings.store_timeout_ms)
        redis = redis_client(settings.redis_url, settings.store_timeout_ms)
        consumer_redis = redis_client(
            settings.redis_url, settings.store_timeout_ms, block_ms=settings.consumer_block_ms
        )
        await init_documents(mongo, settings.mongodb_db, DOCUMENT_MODELS)
        relay = OutboxRelay.from_settings(settings, redis, OUTBOX_MODELS)
        consumer = StreamConsumer.from_settings(
            settings, consumer_redis, UserEventsHandler(relay.notify)
        )
        install_state(
            app,
            ServiceState(
                settings=settings,
                mongo=mongo,
                redis=redis,
                token_verifier=verifier,
                background=BackgroundTasks(),
            ),
        )
        app.state.mongo = mongo
        app.state.redis = redis
        app.state.relay = relay
        app.state.consumer = consumer
        tasks = [
            asyncio.create_task(relay.run(), name="outbox-relay"),
            asyncio.create_task(consumer.run(), name="user-events-consumer"),
        ]
        log.info("tracking_started", database=settings.mongodb_db, stream=settings.events_stream)
        try:
            yield
        finally:
            await asyncio.gather(*(stop_background(task) for task in tasks))
            for client in (redis, consumer_redis, sessions_redis):
                await client.aclose()
            await http.aclose()
            await mongo.close()

    app = create_service_app(
        "tracking",
        settings,
        lifespan,
        title="Momentum tracking-service",
        description="Goals, weekly targets and daily logs; every change is published as an "
        "event through a transactional outbox.",
    )
    app.include_router(goals_router)
    app.include_router(targets_router)
    app.include_router(logs_router)
    app.include_router(health_router)
    return app
