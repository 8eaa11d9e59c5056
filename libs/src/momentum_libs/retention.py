"""Retention of the event stream: by time, never past what a consumer group still needs.

Every ``interval_s`` one relay replica (a lease key beside the stream) trims the stream
with ``XTRIM MINID ~`` to the older of

- the retention cut, ``retention_s`` before Redis's clock (entry ids are their time), and
- the oldest entry any group still needs: its oldest pending (delivered, not acked)
  entry, else the first entry after its last-delivered id.

So nothing a group has not acknowledged is trimmed by time, however long its consumers
are stopped. Only memory can force it: when the stream is still longer than
``hard_maxlen`` the relay trims to that length (``MAXLEN ~``), logs it, counts it
(``momentum_stream_capped_total``), and for each group whose needed entries went with it
records the window lost in the hash ``<stream>.trimmed_unread`` (field ``"<group>
<first id lost> <first id kept>"``). The group's consumer finds it there
(:meth:`momentum_libs.consumer.StreamConsumer.check_trimmed`) and repairs.

Redis 6.2 and 7: ``XTRIM MINID`` and ``XRANGE (id`` are 6.2+; nothing here needs 7.
"""

import asyncio

import structlog

from momentum_libs.metrics import STREAM_CAPPED
from momentum_libs.redis_client import RedisClient
from momentum_libs.stream_keys import beside

log = structlog.get_logger(__name__)


def trimmed_unread_key(stream: str) -> str:
    """The hash of the windows trimmed before a group read them (the stream's slot)."""
    return beside(stream, ".trimmed_unread")


def text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def entry_key(entry_id: str) -> tuple[int, int]:
    """An entry id as a number pair: ids compare by time, then sequence, not as text."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def before(a: str, b: str) -> bool:
    return entry_key(a) < entry_key(b)


class StreamRetention:
    """Trims one stream; run :meth:`maybe_trim` often, it trims once per interval."""

    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        *,
        retention_s: float = 86_400.0,
        hard_maxlen: int = 1_000_000,
        interval_s: float = 10.0,
    ) -> None:
        self._redis = redis
        self.stream = stream
        self._retention_ms = int(retention_s * 1000)
        self._hard_maxlen = hard_maxlen
        self._interval_ms = max(1, int(interval_s * 1000))
        self._lease = beside(stream, ".retention.lease")
        self._next_at = 0.0

    async def maybe_trim(self) -> int:
        """Trim if no replica did this interval (the lease is held, never released, for
        one interval); returns the entries trimmed."""
        now = asyncio.get_running_loop().time()
        if now < self._next_at:  # not this replica's turn yet: spare Redis the lease
            return 0
        self._next_at = now + self._interval_ms / 1000
        if not await self._redis.set(self._lease, "1", nx=True, px=self._interval_ms):
            return 0
        return await self.trim_once()

    async def trim_once(self) -> int:
        """One trim: by time down to what the groups need, then the hard cap."""
        length = int(await self._redis.xlen(self.stream))
        if not length:
            return 0
        needed = await self.needed_by_groups()
        seconds, micros = await self._redis.time()
        cut = f"{max(0, seconds * 1000 + micros // 1000 - self._retention_ms)}-0"
        floors = [entry for entry in needed.values() if entry is not None]
        oldest_needed = min(floors, key=entry_key) if floors else None
        minid = cut if oldest_needed is None or before(cut, oldest_needed) else oldest_needed
        trimmed = int(await self._redis.xtrim(self.stream, minid=minid, approximate=True))
        if length - trimmed > self._hard_maxlen:
            trimmed += await self._cap(length - trimmed, needed)
        return trimmed

    async def needed_by_groups(self) -> dict[str, str | None]:
        """Each group's oldest entry not acknowledged (None: it has read and acked all)."""
        groups = await self._redis.xinfo_groups(self.stream)
        needed: dict[str, str | None] = {}
        for group in groups:
            name = text(group["name"])
            if int(group["pending"]):
                summary = await self._redis.xpending(self.stream, name)
                needed[name] = text(summary["min"])
                continue
            after = f"({text(group['last-delivered-id'])}"
            unread = await self._redis.xrange(self.stream, min=after, max="+", count=1)
            needed[name] = text(unread[0][0]) if unread else None
        return needed

    async def _cap(self, length: int, needed: dict[str, str | None]) -> int:
        """Memory's safety valve: trim to the hard cap, record what groups lost."""
        dropped = int(
            await self._redis.xtrim(self.stream, maxlen=self._hard_maxlen, approximate=True)
        )
        STREAM_CAPPED.inc()
        first = await self._redis.xrange(self.stream, count=1)
        kept = text(first[0][0]) if first else "+"
        log.warning(
            "event_stream_capped",
            stream=self.stream,
            length=length,
            hard_maxlen=self._hard_maxlen,
            dropped=dropped,
        )
        for group, oldest in needed.items():
            if oldest is None or (kept != "+" and not before(oldest, kept)):
                continue
            await self._redis.hset(trimmed_unread_key(self.stream), f"{group} {oldest} {kept}", 1)
            log.error(  # loudly: events this group had not read are gone from the stream
                "event_stream_trimmed_unread",
                stream=self.stream,
                group=group,
                first_lost=oldest,
                first_kept=kept,
                hard_maxlen=self._hard_maxlen,
            )
        return dropped


class PartitionedRetention:
    """The retention of each partition of a partitioned log (each with its own lease, in
    its slot), run together."""

    def __init__(self, partitions: list[StreamRetention]) -> None:
        self.partitions = partitions

    async def maybe_trim(self) -> int:
        return sum([await partition.maybe_trim() for partition in self.partitions])

    async def trim_once(self) -> int:
        return sum([await partition.trim_once() for partition in self.partitions])
