"""Fixtures of the libs tests: a Redis client per test on the shared Redis, helpers."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from momentum_libs.testing import waiting
from redis.asyncio import Redis


async def drop_keys(client: Redis, namespace: str) -> None:
    """Delete a test's keys: ``namespace…``, and ``{namespace…}…`` (the keys kept beside
    a stream, its name as their hash tag)."""
    patterns = (f"{namespace}*", f"{{{namespace}*")
    keys: list[Any] = [k for p in patterns async for k in client.scan_iter(match=p)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis(redis_url: str, namespace: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True, socket_timeout=10)
    try:
        yield client
    finally:
        await drop_keys(client, namespace)
        await client.aclose()


Eventually = Callable[..., Awaitable[None]]


async def _eventually(
    condition: Callable[[], Awaitable[bool]], *, timeout_s: float = 20.0, step_s: float = 0.02
) -> None:
    """Wait until ``condition`` holds; the timeout only bounds a hung test, it asserts no speed."""
    held = await waiting.eventually(condition, timeout_s=timeout_s, interval_s=step_s)
    assert held, f"condition never held within {timeout_s}s"


@pytest.fixture
def eventually() -> Eventually:
    return _eventually
