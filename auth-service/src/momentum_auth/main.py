"""auth-service: users, sessions, tokens and the JWKS.

Run: ``uvicorn --factory momentum_auth.main:create_app``.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from momentum_libs.app import Lifespan, create_service_app
from momentum_libs.background import BackgroundTasks
from momentum_libs.expiry import Expiries
from momentum_libs.mongo import init_documents, mongo_client
from momentum_libs.partitioned import log_consumers
from momentum_libs.problems import problem_response
from momentum_libs.redis_client import RedisClient, redis_client
from momentum_libs.relay import OutboxRelay
from momentum_libs.state import health_router, install_state
from momentum_libs.tokens import AccessTokenVerifier, SessionRevocations
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure

from momentum_auth.keys.router import router as keys_router
from momentum_auth.keys.service import SigningKey, load_signing_key
from momentum_auth.passwords import Passwords
from momentum_auth.settings import AuthSettings
from momentum_auth.state import AuthState
from momentum_auth.tokens.models import RefreshToken, Session
from momentum_auth.tokens.repository import TokenRepository, ensure_session_expiry
from momentum_auth.tokens.router import router as auth_router
from momentum_auth.tokens.service import TokenService
from momentum_auth.tokens.throttle import LoginThrottle
from momentum_auth.users.consumer import ImportedSettingsHandler
from momentum_auth.users.models import User
from momentum_auth.users.repository import UserRepository
from momentum_auth.users.router import router as users_router
from momentum_auth.users.service import UserService

# Revoked session ids must outlive every access token of theirs (plus the verifier's leeway).
REVOCATION_MARGIN_S = 60
_RETRY = {"Retry-After": "5"}

log = structlog.get_logger(__name__)


def _build_state(
    settings: AuthSettings,
    mongo: AsyncMongoClient[dict[str, Any]],
    redis: RedisClient,
    consumer_redis: RedisClient,
    signing_key: SigningKey,
    background: BackgroundTasks,
    expiries: Expiries,
) -> AuthState:
    """Every service once, with its repositories; the repositories wake the relay."""
    revocations = SessionRevocations(redis, settings.access_token_ttl_seconds + REVOCATION_MARGIN_S)
    verifier = AccessTokenVerifier(
        signing_key.verifier_keys(), settings.jwt_issuer, settings.jwt_audience, revocations
    )
    relay = OutboxRelay.from_settings(settings, redis, [User])
    user_repository = UserRepository(relay.notify)
    passwords = Passwords(settings)
    tokens = TokenService(
        settings,
        TokenRepository(),
        user_repository,
        passwords,
        signing_key,
        revocations,
        LoginThrottle(redis, settings),
    )
    users = UserService(user_repository, tokens, passwords, settings.clock)
    imported_settings = ImportedSettingsHandler(users)
    consumer, replay = log_consumers(settings, consumer_redis, imported_settings)
    return AuthState(
        settings=settings,
        mongo=mongo,
        redis=redis,
        token_verifier=verifier,
        background=background,
        expiries=expiries,
        signing_key=signing_key,
        relay=relay,
        consumer=consumer,
        replay_consumer=replay,
        users=users,
        tokens=tokens,
    )


def _lifespan(settings: AuthSettings) -> Lifespan:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        signing_key = load_signing_key(settings)  # refuses to start without a usable key
        redis = redis_client(settings.redis_url, settings.store_timeout_ms)
        consumer_redis = redis_client(
            settings.redis_url, settings.store_timeout_ms, block_ms=settings.consumer_block_ms
        )
        mongo = mongo_client(
            settings.mongodb_url, settings.store_timeout_ms, settings.mongo_audit_file
        )
        background = BackgroundTasks()
        try:
            expiries = await init_documents(
                mongo, settings.mongodb_db, [User, Session, RefreshToken]
            )
            await ensure_session_expiry(expiries, settings.refresh_token_ttl_seconds)
            state = _build_state(
                settings, mongo, redis, consumer_redis, signing_key, background, expiries
            )
            install_state(app, state)
            background.start(state.relay.run(), name="outbox-relay")
            background.start(state.consumer.run(), name="imported-settings-consumer")
            if state.replay_consumer is not None:
                background.start(state.replay_consumer.run(), name="imported-settings-replay")
            state.expiries.start_sweeping(background)
            yield
        finally:
            await background.stop()
            await mongo.close()
            await redis.aclose()
            await consumer_redis.aclose()

    return lifespan


async def _store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("mongodb_unavailable", error=type(exc).__name__)
    return problem_response(
        503, "The service cannot reach its database; try again shortly.", headers=_RETRY
    )


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()
    app = create_service_app(
        "auth",
        settings,
        _lifespan(settings),
        title="Momentum auth-service",
        description="Accounts, sessions and access tokens; the JWKS for everyone who verifies.",
    )
    # MongoDB unreachable is not the client's fault and not a bug: 503, not 500.
    app.add_exception_handler(ConnectionFailure, _store_unavailable)
    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(keys_router)
    app.include_router(health_router)
    return app
