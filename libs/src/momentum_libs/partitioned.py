"""Replicas of a consumer group sharing a partitioned log (:mod:`momentum_libs.partitions`).

Each partition is read by one replica of the group at a time, so a user's events (all in
one partition) are handled in order by one process; the replicas share the partitions
and hand them over when one dies or stops:

- **Leases.** A replica holds a partition while it holds the key
  ``<partition>.owner.<group>`` (``SET NX PX consumer_lease_ms``, in the partition's
  slot), renewed every third of the lease only if still its own; released (deleted if
  still its own) when it stops or gives the partition up. For each partition it holds it
  runs today's :class:`~momentum_libs.consumer.StreamConsumer` on the partition and one
  on the partition's replay stream, so reclaiming, dead letters (``<partition>.dead.
  <group>``, beside it) and the repair of trimmed windows all work per partition.
- **Fair shares.** Each replica announces itself every round in the sorted set
  ``<stream>.replicas.<group>`` (score: Redis's clock; members silent for a lease are
  dropped) and holds ``ceil(P / live replicas)`` partitions: it gives up extras (a new
  replica then takes them) and takes free ones up to its share, starting at a place of
  its own so replicas do not all race for partition 0.
- **Handover.** A replica gives a partition up only after its consumers stopped (their
  unfinished entries stay pending); a dead replica's leases expire. The next owner first
  claims and handles every entry pending on the partition, in stream order, whatever
  its idle time (:meth:`StreamConsumer.take_over`), then reads on: a user's events are
  neither lost nor handled out of order across the handover (handlers stay idempotent:
  an entry handled but not acked by the old owner is handled again).
- A replica that cannot renew its leases for two thirds of a lease (Redis unreachable)
  stops reading its partitions: by then another replica may own them.

A stalled replica (a pause longer than the lease) can still be mid-handler when another
takes its partition over; the lease (default 15 s) must exceed any such pause. The log's
recorded P is checked every round: with another P the replica reads nothing.
"""

import asyncio
import contextlib
import zlib
from collections.abc import Awaitable, Callable

import structlog
from redis.exceptions import RedisError

from momentum_libs.background import (
    FIRST_PAUSE_S,
    LONGEST_PAUSE_S,
    next_pause,
    stop_if_cancelling,
)
from momentum_libs.consumer import (
    RELEASE_IF_MINE_SCRIPT,
    Applied,
    BatchHandler,
    Handler,
    Repair,
    StreamConsumer,
    default_consumer_name,
)
from momentum_libs.dead_letters import replay_consumer
from momentum_libs.metrics import PartitionedConsumerMetrics
from momentum_libs.partitions import (
    PartitionCountMismatchError,
    check_partitions,
    partition_streams,
    users_of,
)
from momentum_libs.redis_client import RedisClient
from momentum_libs.settings import StreamConsumerSettings
from momentum_libs.stream_keys import beside

log = structlog.get_logger(__name__)

ConsumersOf = Callable[[str], list[StreamConsumer]]
"""The consumers a replica runs for a partition it holds (the partition's first)."""

GroupRepair = Callable[[list[str], Callable[[str], bool]], Awaitable[None]]
"""A group's repair of trimmed windows (:data:`~momentum_libs.consumer.Repair`), told
whose events they can have held: the users of the partition they were cut from (on the
one stream, every user). Its own users only, because no other partition's reader touches
them while this partition's reader waits for the repair: a rebuild of every user would
race the other partitions' readers (a projection written from tracking's data, then
overwritten by an event applied to the state read before)."""


# KEYS[1]: the replicas' sorted set. ARGV: this replica, the lease (ms). Scores are
# Redis's clock, so the replicas' own clocks need not agree. Returns the live replicas.
_HEARTBEAT_SCRIPT = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], ms, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])
"""

_RENEW_IF_MINE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class PartitionedConsumer:
    """One replica of a consumer group on a partitioned log; see the module docstring."""

    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        partitions: int,
        group: str,
        consumer_name: str,
        consumers_of: ConsumersOf,
        *,
        lease_ms: int = 15_000,
    ) -> None:
        self._redis = redis
        self.stream = stream
        self.streams = partition_streams(stream, partitions)
        self.group = group
        self.consumer_name = consumer_name
        # Made once: a partition given up and taken again later runs the same consumers.
        self._consumers = [consumers_of(partition) for partition in self.streams]
        self._lease_ms = lease_ms
        self._replicas = beside(stream, f".replicas.{group}")
        self._heartbeat = redis.register_script(_HEARTBEAT_SCRIPT)
        self._renew_if_mine = redis.register_script(_RENEW_IF_MINE_SCRIPT)
        self._release_if_mine = redis.register_script(RELEASE_IF_MINE_SCRIPT)
        self._held: dict[int, asyncio.Task[None]] = {}
        self._renewed_at = 0.0
        # Where this replica starts looking for free partitions: its own place.
        self._first = zlib.crc32(consumer_name.encode()) % partitions
        self.metrics = PartitionedConsumerMetrics(
            group, [consumers[0].metrics for consumers in self._consumers]
        )

    @classmethod
    def from_settings(
        cls,
        settings: StreamConsumerSettings,
        redis: RedisClient,
        handler: Handler,
        batch_handler: BatchHandler | None = None,
        repair: GroupRepair | None = None,
        applied: Applied | None = None,
    ) -> "PartitionedConsumer":
        """This process's replica, as the service's settings describe it: for each partition
        it holds, a consumer of the partition (with ``repair``, told the partition's users)
        and of its replay stream, both dead-lettering beside the partition."""
        name = default_consumer_name(settings.consumer_name_prefix)
        streams = partition_streams(settings.events_stream, settings.events_partitions)

        def consumers_of(partition: str) -> list[StreamConsumer]:
            def consumer(stream: str, repairing: Repair | None) -> StreamConsumer:
                return StreamConsumer.from_settings(
                    settings,
                    redis,
                    handler,
                    batch_handler,
                    stream=stream,
                    repair=repairing,
                    dead_letter_stream=settings.dead_letters_of(partition),
                    consumer_name=name,
                    applied=applied,
                )

            index = streams.index(partition)
            return [
                consumer(partition, of_partition(repair, index, settings.events_partitions)),
                consumer(settings.replay_stream_of(partition), None),
            ]

        return cls(
            redis,
            settings.events_stream,
            settings.events_partitions,
            settings.consumer_group,
            name,
            consumers_of,
            lease_ms=settings.consumer_lease_ms,
        )

    @property
    def held(self) -> list[int]:
        """The partitions this replica reads now."""
        return sorted(self._held)

    def lease_key(self, index: int) -> str:
        return beside(self.streams[index], f".owner.{self.group}")

    async def run(self) -> None:
        """Share the partitions until cancelled; then give back what it holds and leave."""
        try:
            await self._balance_forever()
        finally:
            held = self.held
            await self._stop_reading(held)  # first, and without Redis: nothing reads on
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(2):
                    await self._leave(held)

    async def stop(self) -> None:
        """Stop reading every partition, release their leases, leave the replicas."""
        held = self.held
        await self._stop_reading(held)
        await self._leave(held)

    async def _leave(self, released: list[int]) -> None:
        for index in released:
            await self._release(index)
        await self._redis.zrem(self._replicas, self.consumer_name)
        self.metrics.held = 0

    async def _balance_forever(self) -> None:
        backoff = FIRST_PAUSE_S
        while True:
            stop_if_cancelling()
            try:
                await self.balance_once()
                backoff = FIRST_PAUSE_S
                await asyncio.sleep(self._lease_ms / 3000)
            except PartitionCountMismatchError as exc:
                log.error("consumer_partitions_mismatch", group=self.group, error=str(exc))
                with contextlib.suppress(RedisError, OSError):
                    await self.stop()
                await asyncio.sleep(self._lease_ms / 3000)
            except (RedisError, OSError) as exc:
                log.warning(
                    "consumer_leases_redis_error",
                    group=self.group,
                    error=str(exc),
                    retry_in_s=backoff,
                )
                self._stop_if_lapsed()
                await asyncio.sleep(backoff)
                backoff = next_pause(backoff, LONGEST_PAUSE_S)
            except Exception:
                log.exception("consumer_leases_error", group=self.group, retry_in_s=backoff)
                self._stop_if_lapsed()
                await asyncio.sleep(backoff)
                backoff = next_pause(backoff, LONGEST_PAUSE_S)

    async def balance_once(self) -> list[int]:
        """One round: announce this replica, renew its leases, give up extras, take free
        partitions up to its share; returns the partitions it holds."""
        await check_partitions(self._redis, self.stream, len(self.streams), publishing=False)
        live = int(
            await self._heartbeat(keys=[self._replicas], args=[self.consumer_name, self._lease_ms])
        )
        share = -(-len(self.streams) // max(1, live))
        await self._renew()
        for index in self.held[share:]:
            await self._give_up(index)
        for index in self._free_candidates():
            if len(self._held) >= share:
                break
            if await self._redis.set(
                self.lease_key(index), self.consumer_name, nx=True, px=self._lease_ms
            ):
                self._start(index)
        self.metrics.held = len(self._held)
        return self.held

    async def _renew(self) -> None:
        for index in self.held:
            if not await self._renew_if_mine(
                keys=[self.lease_key(index)], args=[self.consumer_name, self._lease_ms]
            ):
                log.warning("consumer_partition_lost", group=self.group, stream=self.streams[index])
                await self._stop_reading([index])
        self._renewed_at = asyncio.get_running_loop().time()

    def _stop_if_lapsed(self) -> None:
        """Leases not renewed for two thirds of their life: stop reading (without waiting)."""
        if asyncio.get_running_loop().time() - self._renewed_at < self._lease_ms / 1500:
            return
        for index in self.held:
            log.warning("consumer_partition_lapsed", group=self.group, stream=self.streams[index])
            self._held.pop(index).cancel()

    def _free_candidates(self) -> list[int]:
        count = len(self.streams)
        order = [(self._first + step) % count for step in range(count)]
        return [index for index in order if index not in self._held]

    def _start(self, index: int) -> None:
        self._held[index] = asyncio.create_task(
            self._serve(self._consumers[index]), name=f"{self.group}-partition-{index}"
        )
        log.info("consumer_partition_taken", group=self.group, stream=self.streams[index])

    async def _serve(self, consumers: list[StreamConsumer]) -> None:
        """The previous owner's unfinished entries first, then read on."""
        for consumer in consumers:
            await self._take_over(consumer)
        await asyncio.gather(*(consumer.run() for consumer in consumers))

    @staticmethod
    async def _take_over(consumer: StreamConsumer) -> None:
        backoff = FIRST_PAUSE_S
        while True:
            try:
                await consumer.ensure_group()
                taken = await consumer.take_over()
            except (RedisError, OSError) as exc:
                log.warning("consumer_take_over_failed", stream=consumer.stream, error=str(exc))
                await asyncio.sleep(backoff)
                backoff = next_pause(backoff, LONGEST_PAUSE_S)
                continue
            if taken:
                log.info(
                    "consumer_partition_pending_taken_over", stream=consumer.stream, entries=taken
                )
            return

    async def _stop_reading(self, indexes: list[int]) -> None:
        tasks = [self._held.pop(index) for index in indexes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _give_up(self, index: int) -> None:
        """Stop reading the partition, then release it: never two readers at once."""
        await self._stop_reading([index])
        await self._release(index)

    async def _release(self, index: int) -> None:
        await self._release_if_mine(keys=[self.lease_key(index)], args=[self.consumer_name])
        log.info("consumer_partition_released", group=self.group, stream=self.streams[index])


LogConsumer = StreamConsumer | PartitionedConsumer
"""What reads the event log for a group in one process."""


def log_consumers(
    settings: StreamConsumerSettings,
    redis: RedisClient,
    handler: Handler,
    batch_handler: BatchHandler | None = None,
    repair: GroupRepair | None = None,
    applied: Applied | None = None,
) -> tuple[LogConsumer, StreamConsumer | None]:
    """The group's reader of the log and of its replay stream, as a service runs them.

    One stream (P = 1): today's consumer of the stream and one of the group's replay
    stream. Partitions: one replica sharing them (it reads each held partition's replay
    stream itself, so no second reader); its partitions repair one at a time."""
    if settings.events_partitions == 1:
        consumer = StreamConsumer.from_settings(
            settings,
            redis,
            handler,
            batch_handler,
            repair=of_partition(repair, 0, 1),
            whole_log=True,
            applied=applied,
        )
        return consumer, replay_consumer(settings, redis, handler, batch_handler, applied)
    return PartitionedConsumer.from_settings(
        settings,
        redis,
        handler,
        batch_handler,
        None if repair is None else _serialized(repair),
        applied,
    ), None


def of_partition(repair: GroupRepair | None, index: int, partitions: int) -> Repair | None:
    """The repair of partition ``index``'s trimmed windows: ``repair`` told its users."""
    if repair is None:
        return None
    users = users_of(index, partitions)

    async def repair_partition(windows: list[str]) -> None:
        await repair(windows, users)

    return repair_partition


def _serialized(repair: GroupRepair) -> GroupRepair:
    """``repair`` run one call at a time: partitions that lost entries together (the hard
    cap trims them all) rebuild their users one partition after another, so the store
    carries one rebuild's load (``…_REBUILD_CONCURRENCY``), not P of them."""
    lock = asyncio.Lock()

    async def one_at_a_time(windows: list[str], users: Callable[[str], bool]) -> None:
        async with lock:
            await repair(windows, users)

    return one_at_a_time
