"""How fresh a read is: ``as_of`` (when the newest event applied for the user occurred)
and ``pending`` (whether the stream still holds events analytics has not applied).

``as_of`` is kept in one Redis sorted set beside the stream (member: user id, score: the
newest applied ``occurred_at`` in milliseconds), raised with ``ZADD GT`` once the
events of a consumer's read are applied, before their XACK: a replayed or reordered
older event never moves it back. A user's erasure drops their member.

``pending`` is the consumer group's backlog, for all users together: entries delivered
but not yet acknowledged, or not yet delivered at all (the group's last delivered id is
behind the stream's last id). It is what analytics can know cheaply and honestly:
``false`` means every event published when the read began has been applied, so the
user's are too; ``true`` means some events (maybe another user's) are on their way. A
write whose event tracking's relay has not published yet (milliseconds, or longer while
Redis is down) is in neither. Redis 6.2 and 7 alike (XINFO GROUPS/STREAM, ZADD GT).
On a partitioned log the backlog is every partition's (asked at once): ``false`` still
means every published event is applied.
"""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from momentum_libs.events import Envelope, EventType
from momentum_libs.partitions import partition_streams
from momentum_libs.problems import ProblemError
from momentum_libs.redis_client import RedisClient
from redis.exceptions import RedisError, ResponseError


@dataclass(frozen=True)
class Staleness:
    as_of: datetime | None
    pending: bool


def _stream_id(value: Any) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else str(value)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _field(info: dict[Any, Any], name: str) -> Any:
    return info.get(name, info.get(name.encode()))


class Freshness:
    def __init__(self, redis: RedisClient, stream: str, group: str, partitions: int = 1) -> None:
        self._redis = redis
        self._streams = partition_streams(stream, partitions)
        self._group = group
        self._key = f"{stream}.applied.{group}"

    async def record(self, events: Iterable[Envelope]) -> None:
        """Called once ``events`` are applied: raise each user's ``as_of``, or drop it."""
        newest: dict[str, int] = {}
        erased: set[str] = set()
        for event in events:
            if event.type is EventType.USER_DELETED:
                erased.add(event.user_id)
                newest.pop(event.user_id, None)
                continue
            erased.discard(event.user_id)
            millis = int(event.occurred_at.timestamp() * 1000)
            newest[event.user_id] = max(millis, newest.get(event.user_id, 0))
        async with self._redis.pipeline(transaction=False) as pipe:
            if newest:
                pipe.zadd(self._key, newest, gt=True)
            if erased:
                pipe.zrem(self._key, *erased)
            await pipe.execute()

    async def of(self, user_id: str) -> Staleness:
        """Read BEFORE the projection: then ``pending: false`` holds for what is read."""
        try:
            score = await self._redis.zscore(self._key, user_id)
            pending = await self._backlog()
        except (RedisError, OSError) as exc:
            # Redis down: freshness is unknown, and a guess would be a lie (503, not 500).
            raise ProblemError(
                503,
                "Freshness cannot be read right now; try again shortly.",
                headers={"Retry-After": "5"},
            ) from exc
        as_of = None if score is None else datetime.fromtimestamp(score / 1000, UTC)
        return Staleness(as_of=as_of, pending=pending)

    async def _backlog(self) -> bool:
        backlogs = await asyncio.gather(*(self._backlog_of(s) for s in self._streams))
        return any(backlogs)

    async def _backlog_of(self, name: str) -> bool:
        try:
            stream: Any = await self._redis.xinfo_stream(name)
            groups: Any = await self._redis.xinfo_groups(name)
        except ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
            return False  # no stream yet: nothing was ever published
        group = next((g for g in groups if _text(_field(g, "name")) == self._group), None)
        if group is None:  # the consumer has not started yet: all of it waits
            return int(_field(stream, "length")) > 0
        if int(_field(group, "pending")) > 0:
            return True
        last_delivered = _stream_id(_field(group, "last-delivered-id"))
        return _stream_id(_field(stream, "last-generated-id")) > last_delivered


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
