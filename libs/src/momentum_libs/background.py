"""Background loops (outbox relay, stream consumer) that stop when told, every time."""

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

FIRST_PAUSE_S = 0.1
"""How long a background loop waits after its first failure in a row."""

LONGEST_PAUSE_S = 5.0
"""The longest wait of a consumer's loop between failures (a store that stays down)."""


def next_pause(pause_s: float, cap_s: float) -> float:
    """The wait after one more failure in a row, from the last one: doubled, up to ``cap_s``
    (a store that stays down is retried every ``cap_s``, never less often)."""
    return min(pause_s * 2, cap_s)


def stop_if_cancelling() -> None:
    """Raise CancelledError if this task was asked to stop.

    A loop that catches broad exceptions to survive store outages must look: a store
    client may absorb the CancelledError delivered mid-call and raise something else.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def stop_background(task: "asyncio.Task[None]", poll_s: float = 1.0) -> None:
    """Cancel ``task`` until it has ended (a cancel landing inside a store call can be lost)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=poll_s)
    with contextlib.suppress(asyncio.CancelledError):
        await task


class BackgroundTasks:
    """The background tasks of one service process (its loops, started in its lifespan,
    and jobs that requests start): all stopped, and awaited, when it ends."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, loop: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(loop, name=name)
        self._tasks.add(task)
        # A task that ends by itself (an export job) is forgotten: a busy process starts
        # thousands of them.
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, set()
        await asyncio.gather(*(stop_background(task) for task in tasks))
