"""The one retry policy of the house for writes that lost an optimistic race.

A version-guarded write that matches nothing lost to another writer (another request,
a replica, or the outbox relay clearing published events): read again, build again,
write again. Every such loop, in every service, takes its bound and its pause from here.
"""

import asyncio
import random

WRITE_ATTEMPTS = 20
"""How often a guarded write is tried before the request gives up with a 409."""

_BASE_PAUSE_S = 0.002
_MAX_PAUSE_S = 0.05


def pause_s(attempt: int) -> float:
    """The longest pause after the ``attempt``-th lost race (0-based): grows, then capped."""
    return min(_BASE_PAUSE_S * (attempt + 1), _MAX_PAUSE_S)


async def backoff(attempt: int) -> None:
    # Jitter, so writers racing for one document do not collide again in step.
    await asyncio.sleep(random.uniform(0, pause_s(attempt)))  # noqa: S311
