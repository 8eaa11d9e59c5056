"""Bounded in-process memories: a dict that forgets its oldest entries when full."""

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memory: dict[K, V], key: K, value: V, limit: int) -> None:
    """Put ``key`` → ``value`` in ``memory``, first forgetting the oldest entries (a dict
    keeps insertion order) so it holds at most ``limit``; a ``limit`` ≤ 0 keeps nothing."""
    if limit <= 0:
        return
    while len(memory) >= limit:
        del memory[next(iter(memory))]
    memory[key] = value
