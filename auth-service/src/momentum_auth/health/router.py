from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from momentum_libs.health import mongo_check, probe_all, redis_check

from momentum_auth.state import app_state

router = APIRouter(tags=["health"])


@router.get(
    "/health/db",
    summary="MongoDB and Redis, each checked with a round trip",
    responses={503: {"description": "A store is down; the body names it"}},
)
async def health_db(request: Request) -> JSONResponse:
    state = app_state(request)
    timeout_s = state["settings"].store_timeout_ms / 1000
    checks = {
        "mongodb": mongo_check(state["mongo"]),
        "redis": redis_check(state["redis"]),
    }
    results = await probe_all(checks, timeout_s)
    healthy = all(status == "ok" for status in results.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded", **results}
    return JSONResponse(body, status_code=200 if healthy else 503)
