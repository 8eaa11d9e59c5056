from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from momentum_libs.health import mongo_check, probe_all, redis_check

from momentum_analytics.state import AppState

router = APIRouter(tags=["health"])


@router.get(
    "/health/db",
    summary="MongoDB and Redis, each checked with a round trip",
    responses={503: {"description": "A store is down; the body names it"}},
)
async def health_db(state: AppState) -> JSONResponse:
    checks = {"mongodb": mongo_check(state.mongo), "redis": redis_check(state.redis)}
    results = await probe_all(checks, state.settings.store_timeout_ms / 1000)
    healthy = all(status == "ok" for status in results.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded", **results}
    return JSONResponse(body, status_code=200 if healthy else 503)
