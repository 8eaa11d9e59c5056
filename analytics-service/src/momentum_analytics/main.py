"""analytics-service: projections fed by the event stream, and the reads over them.

Run: ``uvicorn --factory momentum_analytics.main:create_app``.
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from momentum_libs.app import create_service_app
from momentum_libs.background import BackgroundTasks
from momentum_libs.mongo import mongo_client
from momentum_libs.partitioned import LogConsumer, log_consumers
from momentum_libs.redis_client import redis_client
from momentum_libs.state import health_router, install_state, jwks_token_verifier
from momentum_libs.tokens import KeyLookup

from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.projections.service import ProjectionService
from momentum_analytics.reads.freshness import Freshness
from momentum_analytics.reads.router import router as reads_router
from momentum_analytics.reads.service import ReadService
from momentum_analytics.rebuild import cli as rebuild
from momentum_analytics.rebuild.source import TrackingSource
from momentum_analytics.settings import AnalyticsSettings
from momentum_analytics.state import AnalyticsState

log = structlog.get_logger(__name__)


def _lifespan(settings: AnalyticsSettings, token_keys: KeyLookup | None) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_client(settings.redis_url, settings.store_timeout_ms)
        # The consumer blocks on XREADGROUP: its own connection, with a longer read timeout.
        consumer_redis = redis_client(
            settings.redis_url, settings.store_timeout_ms, block_ms=settings.consumer_block_ms
        )
        sessions_redis = (
            redis_client(settings.sessions_redis_url, settings.store_timeout_ms)
            if settings.sessions_redis_url
            else redis
        )
        mongo = mongo_client(
            settings.mongodb_url, settings.store_timeout_ms, settings.mongo_audit_file
        )
        # Asked only for a log event the months cannot place (see ProjectionService).
        tracking_mongo = (
            mongo
            if settings.tracking_url == settings.mongodb_url
            else mongo_client(
                settings.tracking_url, settings.store_timeout_ms, settings.mongo_audit_file
            )
        )
        http = httpx.AsyncClient()
        background = BackgroundTasks()
        try:
            repo = ProjectionRepository(mongo[settings.mongodb_db])
            await repo.ensure_indexes()
            tracking = TrackingSource(tracking_mongo[settings.tracking_mongodb_db])
            projections = ProjectionService(repo, settings.clock, tracking.log_is_live)
            freshness = Freshness(
                redis,
                settings.events_stream,
                settings.consumer_group,
                settings.events_partitions,
            )

            # Events trimmed before this group read them: the users they can have been
            # about (which ones is not known: every user of the partition, of the log
            # on one stream) are rebuilt from tracking's data, page by page; the
            # partition's reader reads on once it is done.
            async def repair(windows: list[str], users: Callable[[str], bool]) -> None:
                report = await rebuild.run(settings, None, include=users)
                log.warning("trimmed_events_repaired", windows=windows, **report.as_dict())

            consumer: LogConsumer | None = None
            if settings.consumer_enabled:
                # Freshness is recorded once a step's events are applied (as_of never
                # runs ahead), for all of its users in one round trip.
                consumer, replay = log_consumers(
                    settings,
                    consumer_redis,
                    projections.handle,
                    projections.handle_batch,
                    repair=repair,
                    applied=freshness.record,
                )
                background.start(consumer.run(), name="analytics-consumer")
                if replay is not None:
                    background.start(replay.run(), name="analytics-replay-consumer")
                log.info(
                    "consumer_started",
                    stream=settings.events_stream,
                    group=settings.consumer_group,
                    consumer=consumer.consumer_name,
                )
            install_state(
                app,
                AnalyticsState(
                    settings=settings,
                    mongo=mongo,
                    redis=redis,
                    token_verifier=jwks_token_verifier(settings, http, sessions_redis, token_keys),
                    background=background,
                    reads=ReadService(repo, settings.clock),
                    freshness=freshness,
                    projections=projections,
                    consumer=consumer,
                ),
            )
            yield
        finally:
            await background.stop()
            await mongo.close()
            if tracking_mongo is not mongo:
                await tracking_mongo.close()
            await http.aclose()
            await consumer_redis.aclose()
            if sessions_redis is not redis:
                await sessions_redis.aclose()
            await redis.aclose()

    return lifespan


def create_app(
    settings: AnalyticsSettings | None = None, *, token_keys: KeyLookup | None = None
) -> FastAPI:
    settings = settings or AnalyticsSettings()
    app = create_service_app(
        "analytics",
        settings,
        _lifespan(settings, token_keys),
        title="Momentum analytics-service",
        description="Dashboard, weekly summary, streak and heatmap, precomputed from events.",
    )
    app.include_router(reads_router)
    app.include_router(health_router)
    return app
