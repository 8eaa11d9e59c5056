"""The tracking-service app: ``uvicorn --factory momentum_tracking.main:create_app``."""

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import structlog
from fastapi import FastAPI
from momentum_libs.app import create_service_app
from momentum_libs.background import BackgroundTasks
from momentum_libs.conditional import document_preconditions
from momentum_libs.mongo import init_documents, mongo_client
from momentum_libs.outbox import OutboxRepository
from momentum_libs.partitioned import log_consumers
from momentum_libs.redis_client import redis_client
from momentum_libs.relay import OutboxRelay
from momentum_libs.state import health_router, install_state, jwks_token_verifier
from momentum_libs.tokens import KeyLookup

from momentum_tracking.batch.router import router as batch_router
from momentum_tracking.batch.service import BatchService
from momentum_tracking.breaks.models import Break
from momentum_tracking.breaks.repository import BreakRepository
from momentum_tracking.breaks.router import router as breaks_router
from momentum_tracking.breaks.service import BreakService
from momentum_tracking.changes.models import ChangeEntry, ChangeHead
from momentum_tracking.changes.repository import ChangeRepository
from momentum_tracking.changes.router import router as changes_router
from momentum_tracking.changes.service import ChangeService
from momentum_tracking.days.models import UserDays
from momentum_tracking.days.repository import DaysRepository
from momentum_tracking.days.service import DayService
from momentum_tracking.erasure.service import ErasureService, UserEventsHandler
from momentum_tracking.exports.models import Export
from momentum_tracking.exports.repository import ExportRepository
from momentum_tracking.exports.router import router as exports_router
from momentum_tracking.exports.service import ExportService
from momentum_tracking.goals.models import Goal
from momentum_tracking.goals.repository import GoalRepository
from momentum_tracking.goals.router import router as goals_router
from momentum_tracking.goals.service import GoalService
from momentum_tracking.imports.models import SettingsImport
from momentum_tracking.imports.router import router as imports_router
from momentum_tracking.imports.service import ImportService
from momentum_tracking.logs.models import DailyLog, IdempotencyRecord
from momentum_tracking.logs.repository import IdempotencyRepository, LogRepository
from momentum_tracking.logs.router import router as logs_router
from momentum_tracking.logs.service import LogService
from momentum_tracking.settings import TrackingSettings
from momentum_tracking.state import TrackingState
from momentum_tracking.targets.models import WeeklyTarget
from momentum_tracking.targets.repository import TargetRepository
from momentum_tracking.targets.router import router as targets_router
from momentum_tracking.targets.service import TargetService

log = structlog.get_logger(__name__)

CONTRACT_MODELS = (Goal, WeeklyTarget, DailyLog, Break)
"""The collections of the storage contract analytics' rebuild reads (tracking_store)."""
OUTBOX_MODELS = (*CONTRACT_MODELS, SettingsImport)
DOCUMENT_MODELS = (*OUTBOX_MODELS, IdempotencyRecord, UserDays, ChangeEntry, ChangeHead, Export)


def create_app(
    settings: TrackingSettings | None = None, *, token_keys: KeyLookup | None = None
) -> FastAPI:
    settings = settings or TrackingSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            state = await _build(settings, token_keys, stack)
            install_state(app, state)
            state.background.start(state.relay.run(), "outbox-relay")
            state.background.start(state.consumer.run(), "user-events-consumer")
            if state.replay_consumer is not None:
                state.background.start(state.replay_consumer.run(), "user-events-replay-consumer")
            state.expiries.start_sweeping(state.background)
            stack.push_async_callback(state.background.stop)
            log.info(
                "tracking_started", database=settings.mongodb_db, stream=settings.events_stream
            )
            yield

    app = create_service_app(
        "tracking",
        settings,
        lifespan,
        title="Momentum tracking-service",
        description="Goals, weekly targets, daily logs and breaks; every change is published as an "
        "event through a transactional outbox.",
    )
    document_preconditions(goals_router, targets_router, logs_router, breaks_router)
    app.include_router(goals_router)
    app.include_router(targets_router)
    app.include_router(logs_router)
    app.include_router(breaks_router)
    app.include_router(changes_router)
    app.include_router(batch_router)
    app.include_router(exports_router)
    app.include_router(imports_router)
    app.include_router(health_router)
    return app


async def _build(
    settings: TrackingSettings, token_keys: KeyLookup | None, stack: contextlib.AsyncExitStack
) -> TrackingState:
    """Every client, repository and service of the process, built once; closed by ``stack``."""
    timeout_ms = settings.store_timeout_ms
    http = httpx.AsyncClient()
    stack.push_async_callback(http.aclose)
    mongo = mongo_client(settings.mongodb_url, timeout_ms, settings.mongo_audit_file)
    stack.push_async_callback(mongo.close)
    redis = redis_client(settings.redis_url, timeout_ms)
    stack.push_async_callback(redis.aclose)
    consumer_redis = redis_client(
        settings.redis_url, timeout_ms, block_ms=settings.consumer_block_ms
    )
    stack.push_async_callback(consumer_redis.aclose)
    sessions_redis = redis
    if settings.sessions_redis_url:
        sessions_redis = redis_client(settings.sessions_redis_url, timeout_ms)
        stack.push_async_callback(sessions_redis.aclose)
    expiries = await init_documents(mongo, settings.mongodb_db, DOCUMENT_MODELS)

    relay = OutboxRelay.from_settings(settings, redis, OUTBOX_MODELS)
    retention = timedelta(days=settings.tombstone_retention_days)
    goal_repository = GoalRepository(relay.notify, retention)
    target_repository = TargetRepository(relay.notify, retention)
    log_repository = LogRepository(relay.notify, retention)
    break_repository = BreakRepository(relay.notify)
    key_repository = IdempotencyRepository()
    export_repository = ExportRepository()
    goals = GoalService(goal_repository)
    days_repository = DaysRepository()
    days = DayService(days_repository, settings.clock)
    erasure = ErasureService(
        goal_repository,
        target_repository,
        log_repository,
        break_repository,
        key_repository,
        days,
        export_repository,
    )
    changes = ChangeService(
        ChangeRepository(),
        {
            "goal": goal_repository,
            "weekly_target": target_repository,
            "daily_log": log_repository,
            "break": break_repository,
        },
        retention,
    )
    user_events = UserEventsHandler(erasure, days, changes)
    targets = TargetService(target_repository, goals)
    logs = LogService(log_repository, key_repository, goals, days, settings)
    breaks = BreakService(break_repository, goals, days)
    background = BackgroundTasks()
    consumer, replay = log_consumers(settings, consumer_redis, user_events, user_events.batch)
    return TrackingState(
        settings=settings,
        mongo=mongo,
        redis=redis,
        token_verifier=jwks_token_verifier(settings, http, sessions_redis, token_keys),
        background=background,
        relay=relay,
        consumer=consumer,
        replay_consumer=replay,
        expiries=expiries,
        goals=goals,
        targets=targets,
        logs=logs,
        breaks=breaks,
        days=days,
        erasure=erasure,
        changes=changes,
        batch=BatchService(goals, targets, logs, erasure),
        exports=ExportService(
            export_repository,
            goal_repository,
            target_repository,
            log_repository,
            break_repository,
            days_repository,
            background,
            settings.export_ttl_s,
            settings.clock,
        ),
        imports=ImportService(
            goals,
            targets,
            logs,
            goal_repository,
            target_repository,
            log_repository,
            breaks,
            break_repository,
            OutboxRepository(SettingsImport, relay.notify),
            days_repository,
        ),
    )
