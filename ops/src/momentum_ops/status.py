"""Stream and consumer-group status: length, and per group lag, pending and consumers."""

from dataclasses import asdict, dataclass, field
from typing import Any

from momentum_libs.redis_client import RedisClient
from redis.exceptions import ResponseError

# Redis 6.2 reports no lag: it is counted, up to this many entries (past it: unknown).
LAG_COUNT_LIMIT = 10_000


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass
class ConsumerStatus:
    name: str
    pending: int
    idle_ms: int


@dataclass
class GroupStatus:
    name: str
    lag: int | None  # entries not yet delivered to the group; None: unknown
    pending: int  # delivered, not yet acknowledged
    last_delivered_id: str
    consumers: list[ConsumerStatus] = field(default_factory=list)


@dataclass
class StreamStatus:
    stream: str
    exists: bool
    length: int = 0
    groups: list[GroupStatus] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def stream_status(redis: RedisClient, stream: str) -> StreamStatus:
    try:
        groups: Any = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream
        return StreamStatus(stream, exists=False)
    status = StreamStatus(stream, exists=True, length=int(await redis.xlen(stream)))
    for group in groups:
        name = _text(group["name"])
        last = _text(group["last-delivered-id"])
        consumers: Any = await redis.xinfo_consumers(stream, name)
        status.groups.append(
            GroupStatus(
                name=name,
                lag=await _lag(redis, stream, group, last),
                pending=int(group["pending"]),
                last_delivered_id=last,
                consumers=[
                    ConsumerStatus(_text(c["name"]), int(c["pending"]), int(c["idle"]))
                    for c in consumers
                ],
            )
        )
    return status


async def _lag(redis: RedisClient, stream: str, group: Any, last_delivered: str) -> int | None:
    reported = group.get("lag")  # Redis 7; None there too when it cannot tell
    if reported is not None:
        return int(reported)
    after: Any = await redis.xrange(stream, f"({last_delivered}", "+", count=LAG_COUNT_LIMIT + 1)
    return len(after) if len(after) <= LAG_COUNT_LIMIT else None
