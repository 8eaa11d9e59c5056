from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from momentum_libs.health import mongo_check, probe_all, redis_check

router = APIRouter(tags=["health"])


@router.get(
    "/health/db",
    summary="MongoDB and Redis, each checked with a real round trip",
    responses={503: {"description": "A store is down; the body names it"}},
)
async def health_db(request: Request) -> Any:
    state = request.app.state
    results = await probe_all(
        {"mongodb": mongo_check(state.mongo), "redis": redis_check(state.redis)},
        timeout_s=state.settings.store_timeout_ms / 1000,
    )
    healthy = all(v == "ok" for v in results.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", **results}, status_code=200 if healthy else 503
    )
