"""Waiting in tests for what happens in the background (relays, consumers, processes)."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], Any] = bool,
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
) -> T:
    """Poll ``probe`` until ``done`` holds of its value, or the deadline passes; returns the
    last value (``assert await eventually(check)`` for a condition).

    A bound on waiting, never an assertion on speed: the caller asserts on the value.
    """
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not done(value) and time.monotonic() < deadline:
        await asyncio.sleep(interval_s)
        value = await probe()
    return value


def eventually_blocking(
    probe: Callable[[], T],
    done: Callable[[T], Any] = bool,
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.1,
) -> T:
    """:func:`eventually` for synchronous tests (a client driving the stack over HTTP)."""
    deadline = time.monotonic() + timeout_s
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(interval_s)
        value = probe()
    return value
