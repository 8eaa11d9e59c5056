"""Health checks that do a real round trip, each bounded by a timeout."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pymongo import AsyncMongoClient

from momentum_libs.redis_client import RedisClient

Status = Literal["ok", "down"]
Check = Callable[[], Awaitable[None]]


async def probe(check: Check, timeout_s: float = 2.0) -> Status:
    try:
        await asyncio.wait_for(check(), timeout_s)
    except Exception:  # any failure of a probe means "down"; the reason is not the client's
        return "down"
    return "ok"


def mongo_check(client: AsyncMongoClient[dict[str, object]]) -> Check:
    async def check() -> None:
        await client.admin.command("ping")

    return check


def redis_check(redis: RedisClient) -> Check:
    async def check() -> None:
        await redis.ping()

    return check


async def probe_all(checks: dict[str, Check], timeout_s: float = 2.0) -> dict[str, Status]:
    names = list(checks)
    results = await asyncio.gather(*(probe(checks[n], timeout_s) for n in names))
    return dict(zip(names, results, strict=True))


async def stores_health(
    mongo: AsyncMongoClient[dict[str, Any]], redis: RedisClient, timeout_s: float
) -> tuple[dict[str, str], int]:
    """``GET /health/db``'s body and status: 200 when both stores answer, else 503 naming them."""
    checks = {"mongodb": mongo_check(mongo), "redis": redis_check(redis)}
    results = await probe_all(checks, timeout_s)
    healthy = all(status == "ok" for status in results.values())
    return {"status": "ok" if healthy else "degraded", **results}, 200 if healthy else 503
