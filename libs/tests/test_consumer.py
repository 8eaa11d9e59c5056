"""StreamConsumer against a real Redis: groups, acks, reclaim, dead letters, outages."""

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import structlog
from momentum_libs.background import stop_background
from momentum_libs.consumer import (
    DEAD_DELIVERIES,
    DEAD_ENTRY_ID,
    DEAD_ERROR,
    StreamConsumer,
    default_consumer_name,
)
from momentum_libs.events import STREAM_FIELD, Envelope, EventType, UserPayload
from momentum_libs.metrics import CONSUMER_DELIVERIES, CONSUMER_OUTCOMES
from momentum_libs.settings import StreamConsumerSettings
from momentum_libs.testing.plugin import OwnRedis
from pymongo.errors import NetworkTimeout, ServerSelectionTimeoutError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from .conftest import drop_keys

Eventually = Callable[..., Awaitable[None]]


def event(user_id: str = "u1", timezone: str = "UTC") -> Envelope:
    return Envelope.create(EventType.USER_UPDATED, user_id, UserPayload(timezone=timezone))


class Recorder:
    """A handler that records what it saw; fails the first ``fail_times`` calls per event."""

    def __init__(self, fail_times: int = 0, error: Exception | None = None) -> None:
        self.seen: list[Envelope] = []
        self.fail_times = fail_times
        self.error = error or RuntimeError("handler failed")
        self.calls: dict[str, int] = {}

    async def __call__(self, envelope: Envelope) -> None:
        self.calls[envelope.event_id] = self.calls.get(envelope.event_id, 0) + 1
        if self.calls[envelope.event_id] <= self.fail_times:
            raise self.error
        self.seen.append(envelope)


async def pending_count(redis: Redis, stream: str, group: str) -> int:
    summary: Any = await redis.xpending(stream, group)
    return int(summary["pending"])


def consumer(
    redis: Redis, namespace: str, handler: Any, name: str = "c1", **kwargs: Any
) -> StreamConsumer:
    return StreamConsumer(redis, f"{namespace}events", f"{namespace}group", name, handler, **kwargs)


async def test_default_consumer_name_is_unique_per_call_and_names_the_process() -> None:
    first, second = default_consumer_name("analytics"), default_consumer_name("analytics")
    assert first != second
    assert first.startswith(f"analytics-{socket.gethostname()}-{os.getpid()}-")


async def test_group_created_at_zero_sees_entries_written_before_it(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    events = [event(timezone=tz) for tz in ("UTC", "Europe/Paris", "Asia/Tokyo")]
    for e in events:
        await redis.xadd(stream, e.to_stream_fields())  # type: ignore[arg-type]
    handler = Recorder()
    c = consumer(redis, namespace, handler, block_ms=10)
    await c.ensure_group()
    await c.ensure_group()  # an existing group is fine

    assert await c.process_once() == 3
    assert [e.event_id for e in handler.seen] == [e.event_id for e in events]  # stream order
    assert handler.seen == events
    assert await pending_count(redis, stream, c.group) == 0


async def test_ensure_group_creates_the_stream(redis: Redis, namespace: str) -> None:
    c = consumer(redis, namespace, Recorder())
    await c.ensure_group()
    groups: Any = await redis.xinfo_groups(c.stream)
    assert [g["name"] for g in groups] == [c.group]
    assert await c.process_once() == 0


async def test_ack_happens_only_after_the_handler_returned(redis: Redis, namespace: str) -> None:
    stream, group = f"{namespace}events", f"{namespace}group"
    seen_pending: list[int] = []

    async def handler(_: Envelope) -> None:
        # While the work is being done the entry is still pending: a crash here loses nothing.
        seen_pending.append(await pending_count(redis, stream, group))

    c = consumer(redis, namespace, handler, block_ms=10)
    await c.ensure_group()
    await redis.xadd(stream, event().to_stream_fields())  # type: ignore[arg-type]
    assert await c.process_once() == 1
    assert seen_pending == [1]
    assert await pending_count(redis, stream, group) == 0


async def test_handler_failure_leaves_entry_pending_and_it_is_redelivered_after_idle(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    handler = Recorder(fail_times=1)
    applied = AppliedRecorder(redis, f"{namespace}events", f"{namespace}group")
    c = consumer(
        redis, namespace, handler, block_ms=20, claim_idle_ms=50, max_deliveries=3, applied=applied
    )
    await c.ensure_group()
    e = event()
    await redis.xadd(c.stream, e.to_stream_fields())  # type: ignore[arg-type]

    assert await c.process_once() == 0
    assert handler.seen == []
    assert applied.told == []  # not applied: not told
    assert await pending_count(redis, c.stream, c.group) == 1

    async def handled() -> bool:
        await c.process_once()
        return handler.seen == [e]

    await eventually(handled)
    assert handler.calls[e.event_id] == 2
    assert applied.told == [[e]]  # the reclaimed entry, once applied
    assert await pending_count(redis, c.stream, c.group) == 0
    assert await redis.xlen(c.dead_letter_stream) == 0


async def test_entry_pending_on_a_dead_consumer_is_reclaimed_by_another(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    started = asyncio.Event()

    async def hangs(_: Envelope) -> None:
        started.set()
        await asyncio.Event().wait()

    dying = consumer(redis, namespace, hangs, name="dying", block_ms=20)
    task = asyncio.create_task(dying.run())
    e = event()
    await redis.xadd(dying.stream, e.to_stream_fields())  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), 20)
    task.cancel()  # the consumer dies mid-handler, its entry unacknowledged
    with contextlib.suppress(asyncio.CancelledError):
        await task
    pending: Any = await redis.xpending_range(dying.stream, dying.group, "-", "+", 10)
    assert [p["consumer"] for p in pending] == ["dying"]

    handler = Recorder()
    survivor = consumer(redis, namespace, handler, name="survivor", block_ms=20, claim_idle_ms=50)

    async def reclaimed() -> bool:
        await survivor.process_once()
        return handler.seen == [e]

    await eventually(reclaimed)
    assert await pending_count(redis, dying.stream, dying.group) == 0


async def test_poison_entry_goes_to_dead_letter_after_max_deliveries_with_the_error(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    handler = Recorder(fail_times=10**6, error=ValueError("boom: cannot apply"))
    c = consumer(redis, namespace, handler, block_ms=10, claim_idle_ms=20, max_deliveries=3)
    await c.ensure_group()
    e = event()
    entry_id = await redis.xadd(c.stream, e.to_stream_fields())  # type: ignore[arg-type]
    follower = event(user_id="u2")
    await redis.xadd(c.stream, follower.to_stream_fields())  # type: ignore[arg-type]

    async def dead_lettered() -> bool:
        await c.process_once()
        return bool(await redis.xlen(c.dead_letter_stream) == 2)

    await eventually(dead_lettered)
    assert handler.calls == {e.event_id: 3, follower.event_id: 3}
    dead: Any = await redis.xrange(c.dead_letter_stream)
    first = dead[0][1]
    assert first[DEAD_ENTRY_ID] == entry_id
    assert "ValueError" in first[DEAD_ERROR]
    assert "boom: cannot apply" in first[DEAD_ERROR]
    assert first[DEAD_DELIVERIES] == "3"
    assert Envelope.from_stream_fields(first) == e  # the original fields, replayable
    assert await pending_count(redis, c.stream, c.group) == 0
    # Nothing comes back once dead-lettered.
    assert await c.process_once() == 0
    assert handler.calls[e.event_id] == 3


async def test_a_store_outage_of_any_length_delays_an_event_but_never_dead_letters_it(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    # MongoDB unreachable for 4 times the deliveries that dead-letter any other failure.
    handler = Recorder(fail_times=12, error=ServerSelectionTimeoutError("no MongoDB"))
    c = consumer(redis, namespace, handler, block_ms=10, claim_idle_ms=20, max_deliveries=3)
    await c.ensure_group()
    e = event()
    await redis.xadd(c.stream, e.to_stream_fields())  # type: ignore[arg-type]
    assert await c.process_once() == 0  # not handled: still pending

    async def applied() -> bool:
        await c.process_once()
        return bool(handler.seen)

    await eventually(applied)
    assert handler.seen == [e]
    assert handler.calls[e.event_id] == 13
    assert await redis.xlen(c.dead_letter_stream) == 0
    assert await pending_count(redis, c.stream, c.group) == 0


async def test_a_handler_timing_out_on_a_reachable_store_is_still_dead_lettered(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    handler = Recorder(fail_times=10**6, error=NetworkTimeout("slow query"))
    c = consumer(redis, namespace, handler, block_ms=10, claim_idle_ms=20, max_deliveries=3)
    await c.ensure_group()
    e = event()
    await redis.xadd(c.stream, e.to_stream_fields())  # type: ignore[arg-type]

    async def dead_lettered() -> bool:
        await c.process_once()
        return bool(await redis.xlen(c.dead_letter_stream) == 1)

    await eventually(dead_lettered)
    assert handler.calls == {e.event_id: 3}


async def test_a_batch_failing_on_an_unreachable_store_is_retried_later_as_a_whole(
    redis: Redis, namespace: str
) -> None:
    events = [event("u1", tz) for tz in ("UTC", "Asia/Tokyo", "Europe/Paris")]
    for e in events:
        await redis.xadd(f"{namespace}events", e.to_stream_fields())  # type: ignore[arg-type]
    calls: list[int] = []

    async def unreachable(envelopes: list[Envelope]) -> None:
        calls.append(len(envelopes))
        raise ServerSelectionTimeoutError("no MongoDB")

    single = Recorder()
    c = consumer(redis, namespace, single, block_ms=10, batch_handler=unreachable)
    await c.ensure_group()
    assert await c.process_once() == 0
    assert calls == [3] and single.calls == {}  # not one by one: each would wait it out
    pending: Any = await redis.xpending_range(c.stream, c.group, min="-", max="+", count=10)
    assert [p["times_delivered"] for p in pending] == [0, 0, 0]


async def test_garbage_entries_go_to_dead_letter_at_once_and_valid_ones_still_flow(
    redis_url: str, namespace: str
) -> None:
    # A client without decode_responses: the consumer copes with bytes as well.
    raw = Redis.from_url(redis_url, socket_timeout=10)
    try:
        handler = Recorder()
        c = consumer(raw, namespace, handler, block_ms=10, max_deliveries=5)
        await c.ensure_group()
        ids = [
            await raw.xadd(c.stream, {"something": "else"}),
            await raw.xadd(c.stream, {STREAM_FIELD: "{not json"}),
            await raw.xadd(
                c.stream,
                {STREAM_FIELD: event().model_dump_json().replace("user.updated", "user.exploded")},
            ),
        ]
        good = event()
        await raw.xadd(c.stream, good.to_stream_fields())  # type: ignore[arg-type]

        assert await c.process_once() == 4
        assert handler.seen == [good]
        dead: Any = await raw.xrange(c.dead_letter_stream)
        assert [d[1][DEAD_ENTRY_ID.encode()] for d in dead] == ids
        assert all(b"UnknownEventError" in d[1][DEAD_ERROR.encode()] for d in dead)
        assert all(d[1][DEAD_DELIVERIES.encode()] == b"1" for d in dead)
        assert dead[0][1][b"something"] == b"else"
        assert await pending_count(raw, c.stream, c.group) == 0
    finally:
        keys = [key async for key in raw.scan_iter(match=f"{namespace}*")]
        if keys:
            await raw.delete(*keys)
        await raw.aclose()


async def test_event_of_unknown_version_raised_by_handler_is_dead_lettered_at_once(
    redis: Redis, namespace: str
) -> None:
    calls = 0

    async def handler(envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        envelope.typed_payload()

    c = consumer(redis, namespace, handler, block_ms=10, max_deliveries=5)
    await c.ensure_group()
    future = event().model_copy(update={"version": 2})
    await redis.xadd(c.stream, future.to_stream_fields())  # type: ignore[arg-type]
    assert await c.process_once() == 1
    assert calls == 1
    dead: Any = await redis.xrange(c.dead_letter_stream)
    assert "version 2 is not supported" in dead[0][1][DEAD_ERROR]


async def test_entry_delivered_more_than_max_times_is_dead_lettered_without_handling(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    # A handler that kills its process never fails cleanly: the delivery count still grows.
    handler = Recorder()
    c = consumer(redis, namespace, handler, block_ms=10, claim_idle_ms=20, max_deliveries=2)
    await c.ensure_group()
    entry_id = await redis.xadd(c.stream, event().to_stream_fields())  # type: ignore[arg-type]
    await redis.xreadgroup(c.group, "crashed", {c.stream: ">"})
    await redis.xclaim(c.stream, c.group, "crashed", 0, [entry_id], retrycount=2)
    counts: list[int] = []

    async def dead_lettered() -> bool:
        counts.append(await c.process_once())
        return bool(await redis.xlen(c.dead_letter_stream) == 1)

    await eventually(dead_lettered)
    assert sum(counts) == 1  # dead-lettered counts as handled, once
    assert handler.calls == {}
    dead: Any = await redis.xrange(c.dead_letter_stream)
    assert dead[0][1][DEAD_DELIVERIES] == "3"
    assert "without completing" in dead[0][1][DEAD_ERROR]
    assert await pending_count(redis, c.stream, c.group) == 0


async def test_run_survives_redis_stopping_and_resumes_when_it_is_back(
    own_redis: OwnRedis, namespace: str, eventually: Eventually
) -> None:
    client = Redis.from_url(
        own_redis.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=1
    )
    handler = Recorder()
    c = consumer(client, namespace, handler, block_ms=50)
    task = asyncio.create_task(c.run())
    try:
        before = event(timezone="Europe/Paris")
        await client.xadd(c.stream, before.to_stream_fields())  # type: ignore[arg-type]

        async def seen(n: int) -> bool:
            return len(handler.seen) >= n

        await eventually(lambda: seen(1))
        with structlog.testing.capture_logs() as logged:
            own_redis.stop()
            # Let the loop hit the outage several times.
            await asyncio.sleep(1.0)
        assert not task.done()
        # Retried after 0.1, 0.2, 0.4, 0.8 s, ...: a handful of attempts, not a busy loop.
        failures = [e for e in logged if e["event"] == "consumer_redis_error"]
        assert 1 <= len(failures) <= 6
        own_redis.start()  # empty again (no persistence): the group must be created anew

        after = event(timezone="Asia/Tokyo")

        async def published() -> bool:
            try:
                await client.xadd(c.stream, after.to_stream_fields())  # type: ignore[arg-type]
            except (OSError, ConnectionError, Exception):
                return False
            return True

        await eventually(published)
        await eventually(lambda: seen(2))
        assert not task.done()
        assert handler.seen == [before, after]
    finally:
        await stop_background(task)
        await client.aclose()


async def test_consumers_of_one_group_share_the_work_without_handling_twice(
    redis: Redis, namespace: str
) -> None:
    handler = Recorder()
    first = consumer(redis, namespace, handler, name="a", block_ms=10, batch_size=3)
    second = consumer(redis, namespace, handler, name="b", block_ms=10, batch_size=3)
    await first.ensure_group()
    events = [event(user_id=f"u{i}") for i in range(10)]
    for e in events:
        await redis.xadd(first.stream, e.to_stream_fields())  # type: ignore[arg-type]
    handled = 0
    while handled < len(events):
        got = await first.process_once() + await second.process_once()
        assert got > 0
        handled += got
    seen = [e.event_id for e in handler.seen]
    assert len(seen) == len(set(seen)) == len(events)
    assert set(seen) == {e.event_id for e in events}
    assert await pending_count(redis, first.stream, first.group) == 0


async def test_a_pending_entry_trimmed_from_the_stream_does_not_wedge_reclaim(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    handler = Recorder()
    c = consumer(redis, namespace, handler, block_ms=10, claim_idle_ms=20)
    await c.ensure_group()
    gone_id = await redis.xadd(c.stream, event().to_stream_fields())  # type: ignore[arg-type]
    await redis.xreadgroup(c.group, "crashed", {c.stream: ">"})
    await redis.xdel(c.stream, gone_id)  # e.g. MAXLEN trimmed it while it was pending
    after = event(user_id="u2")
    await redis.xadd(c.stream, after.to_stream_fields())  # type: ignore[arg-type]

    async def drained() -> bool:
        await c.process_once()
        return await pending_count(redis, c.stream, c.group) == 0

    await eventually(drained)
    assert handler.seen == [after]
    assert await redis.xlen(c.dead_letter_stream) == 0


async def test_invalid_settings_are_refused(redis: Redis) -> None:
    with pytest.raises(ValueError, match="max_deliveries"):
        StreamConsumer(redis, "s", "g", "c", Recorder(), max_deliveries=0)
    with pytest.raises(ValueError, match="batch_size"):
        StreamConsumer(redis, "s", "g", "c", Recorder(), batch_size=0)
    with pytest.raises(ValueError, match="concurrency"):
        StreamConsumer(redis, "s", "g", "c", Recorder(), concurrency=0)
    assert StreamConsumer(redis, "s", "g", "c", Recorder()).dead_letter_stream == "s.dead"


class BatchRecorder:
    """A batch handler that records each call's events; fails when a batch holds ``poison``."""

    def __init__(self, poison: str | None = None) -> None:
        self.batches: list[list[Envelope]] = []
        self.poison = poison

    async def __call__(self, envelopes: list[Envelope]) -> None:
        if any(e.payload.get("timezone") == self.poison for e in envelopes):
            raise RuntimeError("poisoned batch")
        self.batches.append(envelopes)


async def test_batch_handler_gets_each_users_events_in_stream_order_in_one_call(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    zones = ["UTC", "Europe/Paris", "Asia/Tokyo", "America/Lima"]
    events = [event(user, tz) for tz in zones for user in ("u1", "u2", "u3")]
    for e in events:
        await redis.xadd(stream, e.to_stream_fields())  # type: ignore[arg-type]
    single, batches = Recorder(), BatchRecorder()
    c = consumer(redis, namespace, single, block_ms=10, batch_handler=batches)
    await c.ensure_group()

    assert await c.process_once() == len(events)
    assert single.seen == []
    assert sorted(batch[0].user_id for batch in batches.batches) == ["u1", "u2", "u3"]
    for batch in batches.batches:
        assert batch == [e for e in events if e.user_id == batch[0].user_id]
    assert await pending_count(redis, stream, c.group) == 0


async def test_a_failed_batch_is_handled_again_one_event_at_a_time(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    good, bad, other = event("u1", "UTC"), event("u1", "Mars/Olympus"), event("u2", "UTC")
    for e in (good, bad, other):
        await redis.xadd(stream, e.to_stream_fields())  # type: ignore[arg-type]

    async def single(envelope: Envelope) -> None:
        if envelope.payload.get("timezone") == "Mars/Olympus":
            raise RuntimeError("no such zone")
        seen.append(envelope)

    seen: list[Envelope] = []
    batches = BatchRecorder(poison="Mars/Olympus")
    c = consumer(redis, namespace, single, block_ms=10, batch_handler=batches)
    await c.ensure_group()

    assert await c.process_once() == 2  # the bad one stays pending
    assert seen == [good, other]  # u1's good event on its own; u2's single event as well
    assert batches.batches == []
    assert await pending_count(redis, stream, c.group) == 1


class AppliedRecorder:
    """An ``applied`` hook: records what it was told, and how much was pending then."""

    def __init__(self, redis: Redis, stream: str, group: str) -> None:
        self._redis, self._stream, self._group = redis, stream, group
        self.told: list[list[Envelope]] = []
        self.pending_then: list[int] = []

    async def __call__(self, envelopes: list[Envelope]) -> None:
        self.told.append(list(envelopes))
        self.pending_then.append(await pending_count(self._redis, self._stream, self._group))


async def xack_calls(redis: Redis) -> int:
    stats: Any = await redis.info("commandstats")
    return int(stats.get("cmdstat_xack", {}).get("calls", 0))


async def test_a_steps_events_of_every_user_are_acked_in_one_xack_after_applied_was_told(
    own_redis: OwnRedis, namespace: str
) -> None:
    """One round trip per step for the acks and one for the service's bookkeeping, not one
    of each per user; and ``applied`` runs while the entries are still pending."""
    client = Redis.from_url(own_redis.url, decode_responses=True)
    try:
        stream = f"{namespace}events"
        events = [event(user, tz) for tz in ("UTC", "Asia/Tokyo") for user in ("u1", "u2", "u3")]
        events.append(event("u4"))  # a user with one event: the single handler's path
        for e in events:
            await client.xadd(stream, e.to_stream_fields())  # type: ignore[arg-type]
        applied = AppliedRecorder(client, stream, f"{namespace}group")
        c = consumer(
            client,
            namespace,
            Recorder(),
            block_ms=10,
            batch_handler=BatchRecorder(),
            applied=applied,
        )
        await c.ensure_group()
        await client.config_resetstat()

        assert await c.process_once() == len(events)
        assert await xack_calls(client) == 1
        assert len(applied.told) == 1
        assert sorted(e.event_id for e in applied.told[0]) == sorted(e.event_id for e in events)
        assert applied.pending_then == [len(events)]
        assert await pending_count(client, stream, c.group) == 0
    finally:
        await client.aclose()


async def test_when_applied_fails_the_steps_entries_stay_pending(
    redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    for user in ("u1", "u2"):
        await redis.xadd(stream, event(user).to_stream_fields())  # type: ignore[arg-type]

    async def applied(_: list[Envelope]) -> None:
        raise RedisConnectionError("Redis went away")

    handler = Recorder()
    c = consumer(redis, namespace, handler, block_ms=10, applied=applied)
    await c.ensure_group()
    with pytest.raises(RedisConnectionError):
        await c.process_once()
    assert len(handler.seen) == 2
    assert await pending_count(redis, stream, c.group) == 2  # delivered again, not lost


async def test_users_are_handled_concurrently_up_to_the_limit(redis: Redis, namespace: str) -> None:
    stream = f"{namespace}events"
    for user in range(6):
        for tz in ("UTC", "Asia/Tokyo"):
            await redis.xadd(stream, event(f"u{user}", tz).to_stream_fields())  # type: ignore[arg-type]
    in_flight, most = 0, 0

    async def slow_batch(envelopes: list[Envelope]) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1

    c = consumer(redis, namespace, Recorder(), block_ms=10, batch_handler=slow_batch, concurrency=2)
    await c.ensure_group()
    assert await c.process_once() == 12
    assert most == 2


async def consumer_names(redis: Redis, stream: str, group: str) -> set[str]:
    consumers: Any = await redis.xinfo_consumers(stream, group)
    return {c["name"] for c in consumers}


async def test_dead_consumers_with_nothing_pending_are_forgotten(
    redis: Redis, namespace: str
) -> None:
    c = consumer(redis, namespace, Recorder(), block_ms=10, forget_idle_ms=50)
    await c.ensure_group()
    await redis.xgroup_createconsumer(c.stream, c.group, "dead-empty")
    await redis.xadd(c.stream, event().to_stream_fields())  # type: ignore[arg-type]
    await redis.xreadgroup(c.group, "dead-busy", {c.stream: ">"}, count=1)  # then it died
    await asyncio.sleep(0.1)

    assert await c.process_once() == 0  # the entry waits for claim_idle_ms
    # dead-busy stays until its entry is reclaimed: removing it would lose the entry.
    names = await consumer_names(redis, c.stream, c.group)
    assert "dead-busy" in names and "dead-empty" not in names
    assert await pending_count(redis, c.stream, c.group) == 1

    # Every forget_idle_ms again, not only when the consumer starts.
    await redis.xgroup_createconsumer(c.stream, c.group, "dead-later")
    await asyncio.sleep(0.1)
    await c.process_once()
    assert "dead-later" not in await consumer_names(redis, c.stream, c.group)


async def test_a_consumer_idle_for_less_than_forget_idle_ms_is_kept(
    redis: Redis, namespace: str
) -> None:
    c = consumer(redis, namespace, Recorder(), block_ms=10, forget_idle_ms=60_000)
    await c.ensure_group()
    await redis.xgroup_createconsumer(c.stream, c.group, "alive-and-idle")
    assert await c.process_once() == 0
    assert "alive-and-idle" in await consumer_names(redis, c.stream, c.group)


async def test_a_consumer_that_stops_leaves_the_group(
    redis: Redis, namespace: str, eventually: Eventually
) -> None:
    handler = Recorder()
    c = consumer(redis, namespace, handler, block_ms=10)
    await redis.xadd(c.stream, event().to_stream_fields())  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logged:
        task = asyncio.create_task(c.run())

        async def handled() -> bool:
            return bool(handler.seen)

        await eventually(handled)
    assert [e for e in logged if e["log_level"] != "info"] == []  # a clean start, no retry
    assert c.consumer_name in await consumer_names(redis, c.stream, c.group)
    await stop_background(task)
    assert await consumer_names(redis, c.stream, c.group) == set()


async def test_the_smallest_settings_work_one_entry_a_read_and_the_first_failure_dead_letters(
    redis: Redis, namespace: str
) -> None:
    poison, fine = event("u1", "Mars/Olympus"), event("u2", "UTC")
    for e in (poison, fine):
        await redis.xadd(f"{namespace}events", e.to_stream_fields())  # type: ignore[arg-type]

    async def handler(envelope: Envelope) -> None:
        if envelope == poison:
            raise RuntimeError("no such zone: " + "Mars/Olympus " * 300)
        seen.append(envelope)

    seen: list[Envelope] = []
    c = consumer(
        redis, namespace, handler, block_ms=10, batch_size=1, max_deliveries=1, concurrency=1
    )
    await c.ensure_group()
    assert await c.process_once() == 1  # one entry read, failed once: dead at once
    dead: Any = await redis.xrange(c.dead_letter_stream)
    assert [Envelope.from_stream_fields(fields) for _, fields in dead] == [poison]
    error = dead[0][1][DEAD_ERROR]
    assert error.startswith("RuntimeError: no such zone") and len(error) <= 2000  # capped
    assert seen == []
    assert await c.process_once() == 1
    assert seen == [fine]
    assert await pending_count(redis, c.stream, c.group) == 0


async def test_a_cycle_counts_reclaimed_and_new_entries_and_waits_for_none_after_reclaiming(
    redis: Redis, namespace: str
) -> None:
    handler = Recorder()
    # block_ms near the client's 10 s socket timeout: a cycle that blocked would show.
    c = consumer(redis, namespace, handler, block_ms=9000, claim_idle_ms=20)
    await c.ensure_group()
    left = [event(f"u{i}") for i in range(3)]
    for e in left:
        await redis.xadd(c.stream, e.to_stream_fields())  # type: ignore[arg-type]
    await redis.xreadgroup(c.group, "crashed", {c.stream: ">"}, count=2)  # then it died
    await asyncio.sleep(0.05)  # past claim_idle_ms
    # Two reclaimed and one new; the wait_for only bounds a cycle that would block.
    assert await asyncio.wait_for(c.process_once(), 5) == 3
    await redis.xadd(c.stream, event("u9").to_stream_fields())  # type: ignore[arg-type]
    await redis.xreadgroup(c.group, "crashed", {c.stream: ">"})  # died again
    await asyncio.sleep(0.05)
    # Reclaimed work and no new entry: it must not wait 9 s for one.
    assert await asyncio.wait_for(c.process_once(), 5) == 1
    assert len(handler.seen) == 4
    assert await pending_count(redis, c.stream, c.group) == 0


async def test_block_ms_zero_reads_without_waiting(redis: Redis, namespace: str) -> None:
    c = consumer(redis, namespace, Recorder(), block_ms=0)
    await c.ensure_group()
    # BLOCK 0 would wait for ever: the wait_for only bounds that.
    assert await asyncio.wait_for(c.process_once(), 5) == 0


async def test_a_resp3_client_reads_the_same_events(redis_url: str, namespace: str) -> None:
    client = Redis.from_url(redis_url, protocol=3, decode_responses=True, socket_timeout=10)
    try:
        handler = Recorder()
        c = consumer(client, namespace, handler, block_ms=10)
        await c.ensure_group()
        events = [event("u1", "UTC"), event("u2", "Asia/Tokyo")]
        for e in events:
            await client.xadd(c.stream, e.to_stream_fields())  # type: ignore[arg-type]
        assert await c.process_once() == 2
        assert sorted(handler.seen, key=events.index) == events
        assert await pending_count(client, c.stream, c.group) == 0
    finally:
        await client.delete(f"{namespace}events")
        await client.aclose()


async def test_run_stops_on_one_cancel_even_when_the_handler_swallows_it(
    redis: Redis, namespace: str
) -> None:
    """A handler (or its store client) may turn the CancelledError delivered mid-call into
    an error of its own, which the consumer survives: it must still see it was told to stop."""
    started = asyncio.Event()

    async def swallows_the_cancel(_: Envelope) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisConnectionError("connection closed mid-call") from None

    c = consumer(redis, namespace, swallows_the_cancel, block_ms=10, claim_idle_ms=20)
    await c.ensure_group()
    await redis.xadd(c.stream, event().to_stream_fields())  # type: ignore[arg-type]
    await redis.xreadgroup(c.group, "crashed", {c.stream: ">"})
    await asyncio.sleep(0.05)  # reclaimed, so handled in the loop's own task
    task = asyncio.create_task(c.run())
    await asyncio.wait_for(started.wait(), 20)
    task.cancel()  # once: the loop goes on after the error, unless it looks
    await asyncio.wait({task}, timeout=20)  # bounds a consumer that never stops
    assert task.cancelled()


async def test_a_cycle_failing_unexpectedly_is_retried_with_back_off_and_run_goes_on(
    redis: Redis, namespace: str
) -> None:
    def broken_predicate(exc: BaseException) -> bool:
        raise TypeError("a bug in the store_unreachable predicate")

    c = consumer(
        redis,
        namespace,
        Recorder(fail_times=10**6),
        block_ms=10,
        claim_idle_ms=20,
        max_deliveries=1000,  # it keeps failing, and keeps coming back
        store_unreachable=broken_predicate,
    )
    await redis.xadd(c.stream, event().to_stream_fields())  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logged:
        task = asyncio.create_task(c.run())
        await asyncio.sleep(1.0)
    try:
        assert not task.done()
        # Retried after 0.1, 0.2, 0.4, 0.8 s, ...: a handful of cycles, not a busy loop.
        failures = [e for e in logged if e["event"] == "consumer_error"]
        assert 1 <= len(failures) <= 6
    finally:
        await stop_background(task)


async def test_a_cycle_that_fails_for_one_user_first_finishes_every_other_users_work(
    redis: Redis, namespace: str
) -> None:
    failing, slow = event("u1", "UTC"), event("u2", "UTC")
    for e in (failing, slow):
        await redis.xadd(f"{namespace}events", e.to_stream_fields())  # type: ignore[arg-type]
    seen: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        if envelope == failing:
            raise RuntimeError("cannot apply")
        await asyncio.sleep(0.2)
        seen.append(envelope)

    def broken_predicate(exc: BaseException) -> bool:
        raise TypeError("a bug in the store_unreachable predicate")

    applied = AppliedRecorder(redis, f"{namespace}events", f"{namespace}group")
    c = consumer(
        redis, namespace, handler, block_ms=10, store_unreachable=broken_predicate, applied=applied
    )
    await c.ensure_group()
    with pytest.raises(TypeError):
        await c.process_once()
    assert seen == [slow]  # u2's work was done and acked before the error came out
    assert applied.told == [[slow]]
    pending: Any = await redis.xpending_range(c.stream, c.group, min="-", max="+", count=10)
    assert len(pending) == 1


class ConsumerSettings(StreamConsumerSettings):
    consumer_name_prefix: str = "svc"


async def test_from_settings_takes_stream_group_name_and_dead_letters_unless_given_others(
    redis: Redis, namespace: str
) -> None:
    settings = ConsumerSettings(
        events_stream=f"{namespace}events", consumer_group=f"{namespace}group"
    )
    handler = Recorder()
    c = StreamConsumer.from_settings(settings, redis, handler)
    assert (c.stream, c.group) == (f"{namespace}events", f"{namespace}group")
    assert c.consumer_name.startswith(f"svc-{socket.gethostname()}-{os.getpid()}-")
    assert c.dead_letter_stream == settings.dead_letters
    other = StreamConsumer.from_settings(
        settings,
        redis,
        handler,
        stream=f"{namespace}replay",
        dead_letter_stream=f"{namespace}replay.dead",
        consumer_name="replayer",
    )
    assert (other.stream, other.group, other.consumer_name, other.dead_letter_stream) == (
        f"{namespace}replay",
        f"{namespace}group",
        "replayer",
        f"{namespace}replay.dead",
    )
    # It reads the stream it was given.
    await other.ensure_group()
    e = event()
    await redis.xadd(other.stream, e.to_stream_fields())  # type: ignore[arg-type]
    assert await other.process_once() == 1
    assert handler.seen == [e]


async def test_take_over_handles_all_that_is_pending_in_stream_order_whatever_its_idle_time(
    redis: Redis, namespace: str
) -> None:
    handler = Recorder()
    # batch_size 2: five pending entries take three XAUTOCLAIMs.
    c = consumer(redis, namespace, handler, block_ms=10, batch_size=2, claim_idle_ms=600_000)
    await c.ensure_group()
    events = [event(f"u{i % 2}", tz) for i, tz in enumerate(["UTC", "Asia/Tokyo"] * 2 + ["UTC"])]
    for e in events:
        await redis.xadd(c.stream, e.to_stream_fields())  # type: ignore[arg-type]
    await redis.xreadgroup(c.group, "previous-owner", {c.stream: ">"})  # its unfinished work
    assert await c.process_once() == 0  # a reclaim would wait claim_idle_ms for them
    assert await c.take_over() == 5
    assert handler.seen == events
    assert await pending_count(redis, c.stream, c.group) == 0
    assert await c.take_over() == 0  # nothing pending: it returns at once


class AckedMeanwhile(Redis):
    """A real client whose XAUTOCLAIM is followed, before anything else, by the entries'
    old holder finishing them (its XACK): the race between our claim and our XPENDING."""

    async def xautoclaim(self, name: Any, groupname: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        reply = await super().xautoclaim(name, groupname, *args, **kwargs)
        claimed = [entry[0] for entry in reply[1] if entry[0] is not None]
        if claimed:
            await self.xack(name, groupname, *claimed)
        return reply


async def test_an_entry_its_old_holder_acks_after_our_claim_is_left_alone(
    redis_url: str, namespace: str
) -> None:
    client = AckedMeanwhile.from_url(redis_url, decode_responses=True, socket_timeout=10)
    try:
        handler = Recorder()
        c = consumer(client, namespace, handler, block_ms=10, claim_idle_ms=20)
        await c.ensure_group()
        await client.xadd(c.stream, event().to_stream_fields())  # type: ignore[arg-type]
        await client.xreadgroup(c.group, "slow", {c.stream: ">"})
        await asyncio.sleep(0.05)  # past claim_idle_ms: the reclaim claims it
        assert await c.process_once() == 0
        assert handler.calls == {}  # done already: not handled twice
        assert await pending_count(client, c.stream, c.group) == 0
        assert await client.xlen(c.dead_letter_stream) == 0
    finally:
        await drop_keys(client, namespace)
        await client.aclose()


def deliveries(c: StreamConsumer) -> dict[str, float]:
    """The group's delivery counters (momentum_consumer_deliveries_total) by outcome."""
    return {
        outcome: CONSUMER_DELIVERIES.labels(c.group, outcome)._value.get()
        for outcome in CONSUMER_OUTCOMES
    }


async def test_each_delivery_is_counted_by_its_outcome(redis: Redis, namespace: str) -> None:
    fails, unreachable, fine = event("u1"), event("u2"), event("u3")

    async def handler(envelope: Envelope) -> None:
        if envelope == fails:
            raise RuntimeError("cannot apply")
        if envelope == unreachable:
            raise ServerSelectionTimeoutError("no MongoDB")

    c = consumer(redis, namespace, handler, block_ms=10, max_deliveries=3)
    await c.ensure_group()
    for e in (fails, unreachable, fine):
        await redis.xadd(c.stream, e.to_stream_fields())  # type: ignore[arg-type]
    await redis.xadd(c.stream, {"something": "else"})  # not an event: dead at once
    assert await c.process_once() == 2
    assert deliveries(c) == {"acked": 1, "failed": 2, "dead_lettered": 1}


async def test_a_batchs_deliveries_are_counted_each(redis: Redis, namespace: str) -> None:
    events = [event(user, tz) for user in ("u1", "u2") for tz in ("UTC", "Asia/Tokyo")]
    for e in events:
        await redis.xadd(f"{namespace}events", e.to_stream_fields())  # type: ignore[arg-type]

    async def batch(envelopes: list[Envelope]) -> None:
        if envelopes[0].user_id == "u2":
            raise ServerSelectionTimeoutError("no MongoDB")

    c = consumer(redis, namespace, Recorder(), block_ms=10, batch_handler=batch)
    await c.ensure_group()
    assert await c.process_once() == 2  # u1's batch; u2's waits for MongoDB
    assert deliveries(c) == {"acked": 2, "failed": 2, "dead_lettered": 0}
