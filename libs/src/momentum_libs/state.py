"""What every service's lifespan builds, typed; and what is built the same way in each.

Each service's ``state.py`` subclasses :class:`ServiceState` with its own services and
stores it with :func:`install_state`; its ``deps.py`` hands them out as ``Annotated``
aliases. ``current_user`` (:mod:`momentum_libs.deps`) and ``GET /health/db`` (below)
read the base fields, so they are wired once for all services.
"""

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo import AsyncMongoClient

from momentum_libs.background import BackgroundTasks
from momentum_libs.health import stores_health
from momentum_libs.redis_client import RedisClient
from momentum_libs.settings import ServiceSettings, VerifyingServiceSettings
from momentum_libs.tokens import AccessTokenVerifier, JwksKeys, KeyLookup, SessionRevocations

# A verifying service only reads revocations (auth-service writes them): the keep time
# matters to revoke() alone.
_READ_ONLY_REVOCATION_KEEP_S = 3600


@dataclass(kw_only=True)
class ServiceState:
    settings: ServiceSettings
    mongo: AsyncMongoClient[dict[str, Any]]
    redis: RedisClient
    token_verifier: AccessTokenVerifier
    background: BackgroundTasks


def install_state(app: FastAPI, state: ServiceState) -> None:
    app.state.service = state


def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def jwks_token_verifier(
    settings: VerifyingServiceSettings,
    http: httpx.AsyncClient,
    sessions_redis: RedisClient,
    keys: KeyLookup | None = None,
) -> AccessTokenVerifier:
    """The verifier of a service that checks the tokens auth-service signs: keys from its
    JWKS (``keys`` instead, in tests), revocations from the sessions Redis."""
    return AccessTokenVerifier(
        keys or JwksKeys(settings.jwks_url, http, settings.jwks_cache_seconds),
        settings.jwt_issuer,
        settings.jwt_audience,
        SessionRevocations(sessions_redis, _READ_ONLY_REVOCATION_KEEP_S),
    )


health_router = APIRouter(tags=["health"])


@health_router.get(
    "/health/db",
    summary="MongoDB and Redis, each checked with a real round trip",
    responses={503: {"description": "A store is down; the body names it"}},
)
async def health_db(request: Request) -> JSONResponse:
    state = service_state(request)
    timeout_s = state.settings.store_timeout_ms / 1000
    body, status = await stores_health(state.mongo, state.redis, timeout_s)
    return JSONResponse(body, status_code=status)
