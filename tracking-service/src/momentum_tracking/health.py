from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from momentum_libs.health import stores_health

router = APIRouter(tags=["health"])


@router.get(
    "/health/db",
    summary="MongoDB and Redis, each checked with a real round trip",
    responses={503: {"description": "A store is down; the body names it"}},
)
async def health_db(request: Request) -> JSONResponse:
    state = request.app.state
    timeout_s = state.settings.store_timeout_ms / 1000
    body, status = await stores_health(state.mongo, state.redis, timeout_s)
    return JSONResponse(body, status_code=status)
