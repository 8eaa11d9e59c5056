"""The partitioned event log against real stores: naming and slots, the relay's routing,
replicas sharing partitions, handover on stop and on SIGKILL, one node and a cluster."""

import asyncio
import contextlib
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from momentum_libs.background import stop_background
from momentum_libs.consumer import StreamConsumer
from momentum_libs.events import Envelope, EventType, LogPayload
from momentum_libs.metrics import Gauges
from momentum_libs.outbox import OutboxRepository
from momentum_libs.partitioned import PartitionedConsumer, log_consumers
from momentum_libs.partitions import (
    DRAINING,
    PartitionCountMismatchError,
    check_partitions,
    partition_of,
    partition_stream,
    partition_streams,
    partitions_key,
)
from momentum_libs.redis_client import RedisClient, redis_client
from momentum_libs.relay import OutboxRelay
from momentum_libs.settings import StreamConsumerSettings
from momentum_libs.testing.plugin import drop_namespace
from momentum_libs.testing.waiting import eventually
from pymongo import AsyncMongoClient
from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot
from structlog.testing import capture_logs

from .partition_replica import Projection, projection_key, replica
from .test_outbox import Note, mongo

__all__ = ["mongo"]  # the fixture, used by name

P = 8
GROUP = "g"
REPLICA_SCRIPT = Path(__file__).with_name("partition_replica.py")


def log_event(user_id: str, seq: int, minutes: int = 1) -> Envelope:
    payload = LogPayload(
        log_id=f"{user_id}-{seq}", goal_id="g1", date=date(2026, 1, 5), minutes=minutes, version=seq
    )
    return Envelope.create(EventType.LOG_CREATED, user_id, payload)


async def publish(redis: RedisClient, stream: str, events: list[Envelope]) -> None:
    """XADD each event to its user's partition, in order (as the relay does)."""
    for ev in events:
        target = partition_stream(stream, partition_of(ev.user_id, P), P)
        await redis.xadd(target, ev.to_stream_fields())  # type: ignore[arg-type]


async def projection(redis: RedisClient, stream: str, user_id: str) -> dict[str, int]:
    raw: Any = await redis.hgetall(projection_key(stream, user_id))
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


async def until(condition: Any, timeout_s: float = 60.0) -> None:
    """Wait for ``condition``; the timeout only bounds a hung test."""
    assert await eventually(condition, timeout_s=timeout_s, interval_s=0.05), "never held"


@contextlib.asynccontextmanager
async def running(consumers: list[PartitionedConsumer]) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        yield tasks
    finally:
        await asyncio.gather(*(stop_background(task) for task in tasks))


# -- names, slots, the recorded count ---------------------------------------------------------


def test_a_partition_has_its_own_tag_and_one_stream_keeps_its_name() -> None:
    assert partition_stream("{momentum.events}", 3, 8) == "{momentum.events.p3}"
    assert partition_stream("r1_{momentum.events}", 0, 8) == "r1_{momentum.events.p0}"
    assert partition_stream("t1_events", 7, 8) == "{t1_events.p7}"
    assert partition_streams("{momentum.events}", 1) == ["{momentum.events}"]
    # Eight partitions, eight slots: a cluster can spread them over its nodes.
    slots = {key_slot(s.encode()) for s in partition_streams("{momentum.events}", 8)}
    assert len(slots) == 8
    # Stable across processes (CRC-32, not the salted hash()).
    assert partition_of("user-42", 8) == zlib.crc32(b"user-42") % 8
    spread = [partition_of(f"u{i}", 8) for i in range(800)]
    assert min(spread.count(p) for p in range(8)) > 60  # roughly even


async def test_the_log_keeps_the_first_count_and_refuses_another(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    await check_partitions(redis, stream, 8, publishing=True)
    await check_partitions(redis, stream, 8, publishing=False)
    assert await redis.get(partitions_key(stream)) == "8"
    with pytest.raises(PartitionCountMismatchError, match="has 8 partitions"):
        await check_partitions(redis, stream, 4, publishing=False)
    # Draining: relays stop, consumers read on.
    await redis.set(partitions_key(stream), DRAINING)
    await check_partitions(redis, stream, 4, publishing=False)
    with pytest.raises(PartitionCountMismatchError, match="being drained"):
        await check_partitions(redis, stream, 8, publishing=True)


# -- the relay ---------------------------------------------------------------------------------


async def test_the_relay_puts_each_users_events_in_its_partition_in_order(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [Note], partitions=P)
    repo = OutboxRepository(Note)
    written: dict[str, list[str]] = {}
    for i in range(60):
        user = f"u{i % 12}"
        ev = log_event(user, i)
        await repo.insert(Note(owner=user, text=str(i)), ev)
        written.setdefault(user, []).append(ev.event_id)
    while await relay.drain_once():
        pass
    found: dict[str, list[str]] = {}
    for index, partition in enumerate(partition_streams(stream, P)):
        for _, fields in await redis.xrange(partition):
            ev = Envelope.from_stream_fields(fields)
            assert partition_of(ev.user_id, P) == index
            found.setdefault(ev.user_id, []).append(ev.event_id)
            # Its claim key is beside its partition (one slot for the script).
            assert await redis.exists(relay.claim_key(ev.event_id, partition))
    assert found == written  # all of them, each once, each user's in order
    assert not await redis.exists(stream)  # nothing in the unpartitioned name

    other = OutboxRelay(redis, stream, [Note], partitions=4)
    await repo.insert(Note(owner="u1", text="late"), log_event("u1", 99))
    with pytest.raises(PartitionCountMismatchError):
        await other.drain_once()
    assert await Note.find({"outbox_pending": True}).count() == 1  # waits in the outbox


# -- replicas ------------------------------------------------------------------------------------


async def test_replicas_take_fair_shares_and_one_that_stops_hands_them_over(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    replicas = [replica(redis, stream, GROUP, P, f"r{i}", lease_ms=600) for i in range(3)]
    async with running(replicas) as tasks:

        async def shared() -> bool:
            held = [r.held for r in replicas]
            return sorted(map(len, held)) == [2, 3, 3] and len({p for h in held for p in h}) == P

        await until(shared)
        await stop_background(tasks[0])

        async def two_share() -> bool:
            held = [r.held for r in replicas[1:]]
            return [len(h) for h in held] == [4, 4] and len({p for h in held for p in h}) == P

        await until(two_share)
        owners = {await redis.get(replicas[1].lease_key(i)) for i in range(P)}
        assert owners == {"r1", "r2"}


async def test_a_users_order_holds_across_a_handover_of_unfinished_entries(
    redis: Redis, namespace: str
) -> None:
    """The first replica stops while a handler of user u1 is stuck: its entries stay
    pending; the next owner handles them first, in order, then the newer ones."""
    stream = f"{namespace}events"
    stuck = asyncio.Event()
    applied = Projection(redis, stream, "a")

    class StuckOnThird(Projection):
        async def __call__(self, envelope: Envelope) -> None:
            if envelope.payload["version"] == 3:
                stuck.set()
                await asyncio.Event().wait()  # never returns: cancelled by the stop
            await applied(envelope)

    first = replica(
        redis, stream, GROUP, P, "a", lease_ms=600, handler=StuckOnThird(redis, stream, "a")
    )
    await publish(redis, stream, [log_event("u1", seq) for seq in range(1, 6)])
    async with running([first]) as tasks:
        await asyncio.wait_for(stuck.wait(), 30)
        await stop_background(tasks[0])
    partition = partition_stream(stream, partition_of("u1", P), P)
    pending: Any = await redis.xpending(partition, GROUP)
    assert pending["pending"] >= 1  # what it had not finished is still pending
    assert (await projection(redis, stream, "u1"))["last"] == 2

    second = replica(redis, stream, GROUP, P, "b", lease_ms=600)
    async with running([second]):
        await publish(redis, stream, [log_event("u1", seq) for seq in range(6, 9)])

        async def all_applied() -> bool:
            return (await projection(redis, stream, "u1")).get("last") == 8

        await until(all_applied)
    seen = await projection(redis, stream, "u1")
    assert seen.get("gaps", 0) == 0
    assert seen["total"] == 8
    assert seen["by:b"] == 6  # 3, 4, 5 taken over, then 6, 7, 8


# -- a replica killed mid-burst, on one node and on a cluster -----------------------------------


@pytest.fixture(params=["single", "cluster"])
def log_redis_url(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> Iterator[str]:
    url = redis_url if request.param == "single" else request.getfixturevalue("redis_cluster_url")
    try:
        yield url
    finally:
        drop_namespace(url, namespace)


USERS = 40
EVENTS_PER_USER = 25


async def test_a_replica_killed_mid_burst_loses_and_repeats_nothing(
    log_redis_url: str, namespace: str
) -> None:
    """Two replicas share P = 8; one (its own process) is killed with SIGKILL while a
    burst is handled: the other takes over its partitions, and every user's projection
    equals its recomputation (all events, each once, in order)."""
    stream = f"{namespace}events"
    client = redis_client(log_redis_url, 5000, block_ms=50)
    lease_ms = 1500
    victim = subprocess.Popen(  # noqa: ASYNC220 (a process of its own, killed by pid)
        [
            sys.executable,
            str(REPLICA_SCRIPT),
            log_redis_url,
            stream,
            GROUP,
            str(P),
            str(lease_ms),
            "victim",
            "0.2",  # slow: it is killed with most of its share unhandled
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    survivor = replica(client, stream, GROUP, P, "survivor", lease_ms=lease_ms, pause_s=0.002)
    try:
        assert victim.stdout is not None
        while (line := victim.stdout.readline()) and line.strip() != f"held {P}":
            pass  # it started alone: it holds every partition
        assert line, "the replica process ended before holding its partitions"
        async with running([survivor]):

            async def halves() -> bool:
                return len(survivor.held) == P // 2

            await until(halves)
            first_half = set(survivor.held)
            events = [
                log_event(f"u{u}", seq, minutes=u + seq)
                for seq in range(1, EVENTS_PER_USER + 1)
                for u in range(USERS)
            ]
            await publish(client, stream, events)

            async def victim_busy() -> bool:
                users = [await projection(client, stream, f"u{u}") for u in range(USERS)]
                return sum(p.get("by:victim", 0) for p in users) >= 40

            await until(victim_busy)
            victim.kill()  # SIGKILL: no release, its entries stay pending on it
            victim.wait()

            async def all_held() -> bool:  # once its leases lapsed
                return survivor.held == list(range(P))

            await until(all_held)

            async def all_applied() -> bool:
                lasts = [
                    (await projection(client, stream, f"u{u}")).get("last") for u in range(USERS)
                ]
                return lasts == [EVENTS_PER_USER] * USERS

            await until(all_applied)
        for u in range(USERS):
            seen = await projection(client, stream, f"u{u}")
            assert seen.get("gaps", 0) == 0, (u, seen)
            assert seen["total"] == sum(u + seq for seq in range(1, EVENTS_PER_USER + 1))
        taken_over = [
            await projection(client, stream, f"u{u}")
            for u in range(USERS)
            if partition_of(f"u{u}", P) not in first_half
        ]
        assert sum(p.get("by:survivor", 0) for p in taken_over) > 0
        for partition in partition_streams(stream, P):
            pending: Any = await client.xpending(partition, GROUP)
            assert pending["pending"] == 0
        if isinstance(client, RedisCluster):  # the partitions are spread over the masters
            nodes = {client.get_node_from_key(s).name for s in partition_streams(stream, P)}
            assert len(nodes) > 1
    finally:
        victim.kill()
        victim.wait()
        await client.aclose()


async def test_the_groups_gauges_count_every_partition_whoever_holds_it(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    users = ["u1", "u2", "u3", "u4"]
    assert len({partition_of(u, P) for u in users}) > 1  # the figures span partitions
    await publish(redis, stream, [log_event(u, 1) for u in users for _ in range(3)])
    for partition in {partition_stream(stream, partition_of(u, P), P) for u in users}:
        await redis.xgroup_create(partition, GROUP, id="0")
        await redis.xreadgroup(GROUP, "gone", {partition: ">"}, count=1)  # one left pending
    observer = replica(redis, stream, GROUP, P, "observer", lease_ms=600)
    gauges = Gauges()
    await observer.metrics.gauges(gauges)
    values = {m.name: m.samples[0].value for m in gauges.collect()}
    spanned = len({partition_of(u, P) for u in users})
    assert values["momentum_consumer_pending_entries"] == spanned
    assert values["momentum_consumer_lag_entries"] == 12 - spanned
    assert values["momentum_consumer_partitions_held"] == 0


class OneStreamGroup(StreamConsumerSettings):
    consumer_name_prefix: str = "test"


async def test_a_one_stream_consumer_reads_nothing_while_the_log_records_another_p(
    redis: Redis, namespace: str
) -> None:
    """Relays on P = 8, a consumer left on P = 1: it would read the one stream, which no
    relay writes to, and idle unseen. It reads nothing and says why until the log's P is 1."""
    settings = OneStreamGroup(events_stream=f"{namespace}events", consumer_group=GROUP)
    await redis.set(partitions_key(settings.events_stream), 8)
    await redis.xadd(settings.events_stream, log_event("u1", 1).to_stream_fields())  # type: ignore[arg-type]
    seen: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        seen.append(envelope)

    consumer, _ = log_consumers(settings, redis, handle)
    assert isinstance(consumer, StreamConsumer)
    await consumer.ensure_group()
    with capture_logs() as logs:
        task = asyncio.create_task(consumer.run())
        try:
            await until(lambda: asyncio.sleep(0, result=bool(logs)))
            assert seen == []
            assert logs[0]["event"] == "consumer_partitions_mismatch"
            assert "has 8 partitions" in logs[0]["error"]
            await redis.set(partitions_key(settings.events_stream), 1)
            await until(lambda: asyncio.sleep(0, result=len(seen) == 1))
        finally:
            await stop_background(task)
