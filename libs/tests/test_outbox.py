"""The embedded outbox and its relay against the real MongoDB-compatible server and Redis."""

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import pytest
from beanie import PydanticObjectId
from momentum_libs import outbox as outbox_module
from momentum_libs.background import stop_background
from momentum_libs.conditional import IfMatch
from momentum_libs.events import Envelope, EventType, UserPayload
from momentum_libs.mongo import init_documents, mongo_client
from momentum_libs.outbox import (
    OUTBOX_INDEX,
    OutboxDocument,
    OutboxRepository,
    entity_tag,
    guard,
    update_with_event,
)
from momentum_libs.problems import ProblemError
from momentum_libs.relay import OutboxRelay
from momentum_libs.retention import StreamRetention
from momentum_libs.retry import WRITE_ATTEMPTS
from momentum_libs.testing.plugin import OwnRedis
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .conftest import drop_keys
from .test_retention import old_then_new

Eventually = Callable[..., Awaitable[None]]


class Note(OutboxDocument):
    owner: str
    text: str

    class Settings:
        name = "notes"
        indexes = [OUTBOX_INDEX]


class Memo(OutboxDocument):
    """A second document class: a service's relay serves all of its classes at once."""

    owner: str

    class Settings:
        name = "memos"
        indexes = [OUTBOX_INDEX]


class KeptNote(OutboxDocument):
    """A class whose tombstones stay once published (tracking's goals, targets, logs)."""

    owner: str
    keep_tombstones: ClassVar[bool] = True

    class Settings:
        name = "kept_notes"
        indexes = [OUTBOX_INDEX]


@contextlib.asynccontextmanager
async def outbox_database(
    client: AsyncMongoClient[Any], namespace: str
) -> AsyncIterator[AsyncMongoClient[Any]]:
    database = f"{namespace}outbox"
    await init_documents(client, database, [Note, Memo, KeptNote])
    try:
        yield client
    finally:
        await client.drop_database(database)
        await client.close()


@pytest.fixture
async def mongo(mongodb_url: str, namespace: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    async with outbox_database(mongo_client(mongodb_url, 5000), namespace) as client:
        yield client


class PendingScans(monitoring.CommandListener):
    """Counts the relay's passes as MongoDB sees them: each pass finds the pending
    documents of each class it reads once (``count``; per collection: ``of``)."""

    def __init__(self) -> None:
        self.count = 0
        self.of: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("filter") == PENDING:
            self.count += 1
            self.of[event.command["find"]] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


PENDING = {"outbox_pending": True}


@pytest.fixture
async def scans(mongodb_url: str, namespace: str) -> AsyncIterator[PendingScans]:
    """The outbox database on a client whose relay passes are counted."""
    counter = PendingScans()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongodb_url, event_listeners=[counter], tz_aware=True, serverSelectionTimeoutMS=5000
    )
    async with outbox_database(client, namespace):
        yield counter


def event(owner: str, timezone: str) -> Envelope:
    return Envelope.create(EventType.USER_UPDATED, owner, UserPayload(timezone=timezone))


async def create(owner: str, text: str) -> tuple[Note, Envelope]:
    ev = event(owner, f"create/{text}")
    note = await OutboxRepository(Note).insert(Note(owner=owner, text=text), ev)
    return note, ev


async def change(note_id: PydanticObjectId | None, text: str, *, delete: bool = False) -> Envelope:
    """A writer as a service would write: read, guarded update, retry on a lost race."""
    for _ in range(10):
        current = await Note.get(note_id)
        assert current is not None
        ev = event(current.owner, f"{'delete' if delete else 'update'}/{text}")
        result = await Note.get_pymongo_collection().update_one(
            guard(current), update_with_event(current, {"text": text}, ev, delete=delete)
        )
        if result.matched_count == 1:
            return ev
    raise AssertionError("the write never won")


async def published(redis: Redis, stream: str) -> list[Envelope]:
    entries: Any = await redis.xrange(stream)
    return [Envelope.from_stream_fields(fields) for _, fields in entries]


def ids(events: list[Envelope]) -> list[str]:
    return [e.event_id for e in events]


async def raw(note_id: Any) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await Note.get_pymongo_collection().find_one({"_id": note_id})
    return doc


async def test_create_update_delete_publish_in_order_and_the_tombstone_goes(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [Note])
    note, created = await create("u1", "a")

    assert await relay.drain_once() == 1
    assert ids(await published(redis, stream)) == [created.event_id]
    after = await Note.get(note.id)
    assert after is not None
    assert after.outbox == []
    assert after.outbox_pending is False
    assert after.version == 2  # the relay's clear bumps the version

    updated = await change(note.id, "b")
    updated_again = await change(note.id, "c")
    current = await Note.get(note.id)
    assert current is not None
    assert ids(current.outbox) == [updated.event_id, updated_again.event_id]
    assert current.text == "c"

    assert await relay.drain_once() == 2
    deleted = await change(note.id, "c", delete=True)
    tombstone = await raw(note.id)
    assert tombstone is not None
    assert bool(tombstone["deleted"]) is True
    assert await relay.drain_once() == 1

    events = await published(redis, stream)
    assert ids(events) == [e.event_id for e in (created, updated, updated_again, deleted)]
    assert events[-1].typed_payload() == UserPayload(timezone="delete/c")
    assert await raw(note.id) is None  # tombstone removed once its last event is out
    assert await relay.drain_once() == 0
    assert len(await published(redis, stream)) == 4


async def test_a_kept_tombstone_stays_cleared_once_published(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [KeptNote])
    repository = OutboxRepository(KeptNote)
    note = await repository.insert(KeptNote(owner="u1"), event("u1", "create"))
    assert await repository.write(note, {}, event("u1", "delete"), delete=True) is not None
    assert await relay.drain_once() == 2
    kept = await KeptNote.get_pymongo_collection().find_one({"_id": note.id})
    assert kept is not None
    assert (kept["deleted"], kept["outbox"], kept["outbox_pending"]) == (True, [], False)
    assert await relay.drain_once() == 0  # published once: nothing left to find
    assert len(await published(redis, stream)) == 2


async def test_a_stale_write_matches_nothing_and_a_deleted_document_takes_no_write(
    mongo: AsyncMongoClient[Any],
) -> None:
    note, _ = await create("u1", "a")
    stale = await Note.get(note.id)
    assert stale is not None
    await change(note.id, "b")
    collection = Note.get_pymongo_collection()
    lost = await collection.update_one(
        guard(stale), update_with_event(stale, {"text": "x"}, event("u1", "x"), delete=False)
    )
    assert lost.matched_count == 0
    await change(note.id, "b", delete=True)
    current = await Note.get(note.id)
    assert current is not None
    refused = await collection.update_one(
        guard(current), update_with_event(current, {"text": "y"}, event("u1", "y"), delete=False)
    )
    assert refused.matched_count == 0
    final = await raw(note.id)
    assert final is not None
    assert final["text"] == "b"


async def test_redis_down_writes_succeed_then_everything_is_published_exactly_once(
    mongo: AsyncMongoClient[Any], own_redis: OwnRedis, namespace: str, eventually: Eventually
) -> None:
    stream = f"{namespace}events"
    client = Redis.from_url(own_redis.url, socket_timeout=2, socket_connect_timeout=1)
    relay = OutboxRelay(client, stream, [Note], sweep_interval_s=0.05, max_backoff_s=0.2)
    own_redis.stop()
    try:
        expected: list[Envelope] = []
        notes: list[Note] = []
        note, ev = await create("u0", "a")  # the write succeeds while Redis is down
        notes.append(note)
        expected.append(ev)
        with pytest.raises((RedisError, OSError)):
            await relay.drain_once()

        task = asyncio.create_task(relay.run())
        expected.append(await change(note.id, "b"))
        for i in range(1, 5):
            note, ev = await create(f"u{i}", "a")
            notes.append(note)
            expected.append(ev)
            expected.append(await change(note.id, "b"))
            relay.notify()
        expected.append(await change(notes[0].id, "b", delete=True))
        await asyncio.sleep(0.5)  # the relay keeps failing meanwhile, and keeps running
        assert not task.done()
        pending = await Note.get_pymongo_collection().count_documents({"outbox_pending": True})
        assert pending == 5  # nothing was published, nothing was cleared

        own_redis.start()

        async def all_out() -> bool:
            try:
                return len(await published(client, stream)) >= len(expected)
            except (RedisError, OSError):
                return False

        await eventually(all_out)

        async def all_cleared() -> bool:
            collection = Note.get_pymongo_collection()
            return await collection.count_documents({"outbox_pending": True}) == 0

        await eventually(all_cleared)
        assert not task.done()
        await stop_background(task)
        events = await published(client, stream)
        assert len(ids(events)) == len(set(ids(events)))  # no event twice
        assert set(ids(events)) == set(ids(expected))
        for note in notes:  # each document's events in the order written
            own = [e.event_id for e in expected if e.user_id == note.owner]
            assert [e.event_id for e in events if e.user_id == note.owner] == own
        assert await raw(notes[0].id) is None
    finally:
        await client.aclose()


class HookedRedis(Redis):
    """A real Redis client that runs a hook right after the relay's publish script (or
    its dead letters' pipeline), before its clear."""

    after_publish: Callable[[], Awaitable[None]] | None = None

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:  # type: ignore[override]
        result = await super().evalsha(sha, numkeys, *keys_and_args)
        if self.after_publish is not None:
            await self.after_publish()
        return result

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        hook, execute = self.after_publish, pipe.execute

        async def execute_then_hook(raise_on_error: bool = True) -> Any:
            result = await execute(raise_on_error)
            if hook is not None:
                await hook()
            return result

        pipe.execute = execute_then_hook  # type: ignore[method-assign]
        return pipe


def race_the_next_publish(
    client: HookedRedis, note_id: PydanticObjectId | None, text: str
) -> list[Envelope]:
    """A writer changes the note right after the relay's next publish, before its clear;
    the returned list receives the event it wrote."""
    racing: list[Envelope] = []

    async def writer_lands_between_publish_and_clear() -> None:
        client.after_publish = None
        racing.append(await change(note_id, text))

    client.after_publish = writer_lands_between_publish_and_clear
    return racing


@pytest.fixture
async def hooked(redis_url: str, namespace: str) -> AsyncIterator[HookedRedis]:
    client = HookedRedis.from_url(redis_url, socket_timeout=5)
    assert isinstance(client, HookedRedis)
    try:
        yield client
    finally:
        await drop_keys(client, namespace)
        await client.aclose()


async def test_a_writer_racing_the_relay_keeps_its_new_event(
    mongo: AsyncMongoClient[Any], hooked: HookedRedis, namespace: str
) -> None:
    stream = f"{namespace}events"
    client = hooked
    relay = OutboxRelay(client, stream, [Note])
    note, created = await create("u1", "a")
    racing = race_the_next_publish(client, note.id, "b")
    assert await relay.drain_once() == 1
    current = await Note.get(note.id)
    assert current is not None
    assert ids(current.outbox) == ids(racing)  # kept, and the published one cleared
    assert current.outbox_pending is True

    assert await relay.drain_once() == 1
    assert ids(await published(client, stream)) == [created.event_id, racing[0].event_id]

    # A writer that read before the relay cleared loses its guard and retries on the
    # cleared array: it never re-adds an event already published.
    stale = await Note.get(note.id)
    assert stale is not None
    await change(note.id, "c")
    await relay.drain_once()
    lost = await Note.get_pymongo_collection().update_one(
        guard(stale), update_with_event(stale, {"text": "d"}, event("u1", "d"))
    )
    assert lost.matched_count == 0
    last = await change(note.id, "d")
    current = await Note.get(note.id)
    assert current is not None
    assert ids(current.outbox) == [last.event_id]
    await relay.drain_once()
    events = await published(client, stream)
    assert len(events) == 4
    assert len(set(ids(events))) == 4


async def test_one_racing_writer_in_a_batch_keeps_its_event_and_the_rest_clear_at_once(
    mongo: AsyncMongoClient[Any], hooked: HookedRedis, namespace: str
) -> None:
    stream = f"{namespace}events"
    client = hooked
    relay = OutboxRelay(client, stream, [Note])
    notes = [(await create("u1", text))[0] for text in ("a", "b", "c", "d")]
    racer = notes[1]
    racing = race_the_next_publish(client, racer.id, "b2")
    assert await relay.drain_once() == 4
    for note in notes:
        doc = await raw(note.id)
        assert doc is not None
        if note is racer:
            assert ids([Envelope.model_validate(e) for e in doc["outbox"]]) == ids(racing)
            assert doc["outbox_pending"]
            assert doc["version"] == note.version + 2  # the writer's write, one clear
        else:  # cleared once: one version bump, not two
            assert (doc["outbox"], bool(doc["outbox_pending"])) == ([], False)
            assert doc["version"] == note.version + 1
    assert await relay.drain_once() == 1
    assert len(set(ids(await published(client, stream)))) == 5


async def test_published_events_are_the_events_written(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    note, created = await create("u1", "a")
    updated = await change(note.id, "b")
    await OutboxRelay(redis, stream, [Note]).drain_once()
    assert await published(redis, stream) == [created, updated]


async def test_an_invalid_entry_is_dead_lettered_and_blocks_nothing(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [Note])
    before, first = await create("u1", "a")
    valid = event("u1", "Asia/Tokyo").model_dump(mode="json")
    broken = {"type": "note.exploded", "payload": "not an object"}  # no event_id either
    mixed = await Note.get_pymongo_collection().insert_one(
        {"owner": "u1", "text": "b", "version": 1, "deleted": False}
        | {"outbox": [broken, valid], "outbox_pending": True}
    )
    _, after = await create("u1", "c")

    assert await relay.drain_once() == 4  # three events and one dead letter
    assert sorted(ids(await published(redis, stream))) == sorted(
        [first.event_id, valid["event_id"], after.event_id]
    )
    dead: Any = await redis.xrange(relay.dead_letter_stream)
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields["document"] == str(mixed.inserted_id)
    assert "not a valid event" in fields["dead_letter_error"]
    assert json.loads(fields["entry"]) == broken
    for note_id in (before.id, mixed.inserted_id):
        doc = await raw(note_id)
        assert doc is not None
        assert (doc["outbox"], bool(doc["outbox_pending"])) == ([], False)
    assert await relay.drain_once() == 0


async def test_clearing_after_a_race_keeps_an_event_written_after_the_relays_read(
    mongo: AsyncMongoClient[Any],
) -> None:
    """The relay read the note with its first event, published it, and a writer added a
    second event before the relay's clear: the clear must lose its guard, read again and
    take off the first event only, leaving the second pending (never published twice)."""
    note, first = await create("u1", "a")
    read_by_relay = await raw(note.id)
    second = await change(note.id, "b")
    collection = Note.get_pymongo_collection()
    await OutboxRelay._mark_published(collection, read_by_relay, {first.event_id})
    current = await Note.get(note.id)
    assert current is not None
    assert ids(current.outbox) == [second.event_id]
    assert current.outbox_pending is True
    await OutboxRelay._mark_published(collection, await raw(note.id), {second.event_id})
    cleared = await Note.get(note.id)
    assert cleared is not None
    assert cleared.outbox == [] and cleared.outbox_pending is False


async def test_the_etag_follows_writes_not_the_relay_and_if_match_is_checked_in_the_write(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    repo = OutboxRepository(Note)
    relay = OutboxRelay(redis, f"{namespace}etag.events", [Note])
    note, _ = await create("owner-1", "first")
    tag = entity_tag(note)

    async def load() -> Note | None:
        return await Note.get(note.id)

    def rename(text: str) -> Callable[[Note], tuple[dict[str, Any], Envelope]]:
        return lambda current: ({"text": text}, event(current.owner, text))

    # The relay clears the event and bumps version: a client sees nothing new.
    assert await relay.drain_once() == 1
    cleared = await load()
    assert cleared is not None and cleared.version == 2 and entity_tag(cleared) == tag
    # Read before the relay's bump, written after it: the guard misses, the retry reads
    # again and the precondition still holds (the client's tag is still current).
    written = await repo.change(load, rename("second"), first=note, if_match=IfMatch(tag))
    assert written is not None and written.text == "second" and entity_tag(written) != tag
    stored = await load()
    assert stored is not None and entity_tag(stored) == entity_tag(written)
    # The old tag no longer names it: 412, and nothing is written.
    with pytest.raises(ProblemError) as failed:
        await repo.change(load, rename("third"), if_match=IfMatch(f'"x", {tag}'))
    assert failed.value.status == 412
    unchanged = await load()
    assert unchanged is not None and unchanged.text == "second"


async def test_run_publishes_at_once_when_notified_and_an_idle_relay_waits_for_the_sweep(
    scans: PendingScans, redis: Redis, namespace: str, eventually: Eventually
) -> None:
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [Note], sweep_interval_s=3600, batch_size=2)
    written = [(await create("u1", text))[1] for text in ("a", "b", "c")]
    task = asyncio.create_task(relay.run())
    try:

        async def out(n: int) -> bool:
            return len(await published(redis, stream)) == n

        # A full batch means more may wait: the relay goes on before it sleeps.
        await eventually(lambda: out(3))
        assert ids(await published(redis, stream)) == ids(written)
        await asyncio.sleep(0.2)  # time enough for a relay that spins to show it
        assert scans.count == 2  # a full batch, then the rest; then it waits

        _, later = await create("u1", "d")
        relay.notify()  # an hour before the next sweep
        await eventually(lambda: out(4))
        await asyncio.sleep(0.2)
        assert scans.count == 3  # one pass per notify, then it waits again
        assert ids(await published(redis, stream))[-1] == later.event_id
        assert not task.done()
    finally:
        await stop_background(task)


async def test_a_pass_woken_by_a_write_reads_only_the_class_written(
    scans: PendingScans, redis: Redis, namespace: str, eventually: Eventually
) -> None:
    """A service's relay serves several classes: a write of one must not cost a read of
    each other one. A leftover no write told of waits for the sweep, which reads all."""
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [Note, Memo], sweep_interval_s=3600)
    task = asyncio.create_task(relay.run())
    try:

        async def first_sweep_done() -> bool:
            return scans.of == {"notes": 1, "memos": 1}

        await eventually(first_sweep_done)
        leftover = event("u1", "memo")  # as a crashed replica leaves it: nobody notifies
        await OutboxRepository(Memo).insert(Memo(owner="u1"), leftover)
        _, note_created = await create("u1", "a")
        relay.notify(Note)
        await eventually(lambda: _published_ids(redis, stream, [note_created.event_id]))
        await asyncio.sleep(0.2)
        assert scans.of == {"notes": 2, "memos": 1}
        relay.notify()  # of any class: all of them are read
        await eventually(
            lambda: _published_ids(redis, stream, [note_created.event_id, leftover.event_id])
        )
        assert scans.of == {"notes": 3, "memos": 2}
    finally:
        await stop_background(task)


async def test_the_sweep_reads_every_class_however_often_one_is_written(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str, eventually: Eventually
) -> None:
    """Passes woken by writes of one class must not starve the sweep of the others."""
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [Note, Memo], sweep_interval_s=0.5)
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0.2)  # past the first sweep
    leftover = event("u1", "memo")
    await OutboxRepository(Memo).insert(Memo(owner="u1"), leftover)
    repo = OutboxRepository(Note, relay.notify)

    async def busy() -> None:
        while True:
            await repo.insert(Note(owner="u1", text="n"), event("u1", "n"))
            await asyncio.sleep(0.02)

    writes = asyncio.create_task(busy())
    try:

        async def swept() -> bool:
            return leftover.event_id in ids(await published(redis, stream))

        await eventually(swept)  # starved, it would never come
    finally:
        await stop_background(writes)
        await stop_background(task)


async def _published_ids(redis: Redis, stream: str, expected: list[str]) -> bool:
    return ids(await published(redis, stream)) == expected


async def test_run_trims_the_stream_by_its_retention_after_a_pass(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str, eventually: Eventually
) -> None:
    """The relay is what runs retention: entries older than it keeps go after a pass."""
    stream = f"{namespace}events"
    old = await old_then_new(redis, stream, new=0)
    retention = StreamRetention(redis, stream, retention_s=3600, interval_s=3600)
    relay = OutboxRelay(redis, stream, [Note], retention=retention, sweep_interval_s=3600)
    _, written = await create("u1", "a")
    task = asyncio.create_task(relay.run())
    try:

        async def trimmed() -> bool:
            left = await redis.xlen(stream)
            return (
                0 < left < len(old) and ids(await published(redis, stream))[-1] == written.event_id
            )

        await eventually(trimmed)
    finally:
        await stop_background(task)


async def test_run_stops_on_one_cancel_even_when_a_store_client_swallows_it(
    mongo: AsyncMongoClient[Any], hooked: HookedRedis, namespace: str
) -> None:
    """A client may turn the CancelledError delivered mid-call into an error of its own,
    which the relay's loop survives: it must still see that it was asked to stop."""
    relay = OutboxRelay(hooked, f"{namespace}events", [Note], sweep_interval_s=0.05)
    await create("u1", "a")
    publishing = asyncio.Event()

    async def swallow_the_cancel() -> None:
        hooked.after_publish = None
        publishing.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisConnectionError("connection closed mid-call") from None

    hooked.after_publish = swallow_the_cancel
    task = asyncio.create_task(relay.run())
    await asyncio.wait_for(publishing.wait(), 20)
    task.cancel()  # once: the loop goes on after the error, unless it looks
    await asyncio.wait({task}, timeout=20)  # bounds a relay that never stops
    assert task.cancelled()


async def test_one_relay_publishes_every_document_class_it_serves(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [Note, Memo])
    _, note_created = await create("u1", "a")
    memo_created = event("u1", "memo")
    await OutboxRepository(Memo).insert(Memo(owner="u1"), memo_created)
    assert await relay.drain_once() == 2  # counted over both classes
    assert ids(await published(redis, stream)) == [note_created.event_id, memo_created.event_id]
    assert await relay.drain_once() == 0


async def test_invalid_entries_are_dead_lettered_with_their_error_capped(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    relay = OutboxRelay(redis, f"{namespace}events", [Note])
    one_error = event("u1", "UTC").model_dump(mode="json")
    del one_error["user_id"]
    many_errors = event("u1", "UTC").model_dump(mode="json") | {
        f"unexpected_{i}": i for i in range(100)
    }
    await Note.get_pymongo_collection().insert_one(
        {"owner": "u1", "text": "a", "version": 1, "deleted": False}
        | {"outbox": [one_error, many_errors], "outbox_pending": True}
    )
    assert await relay.drain_once() == 2
    dead: Any = await redis.xrange(relay.dead_letter_stream)
    errors = [fields["dead_letter_error"] for _, fields in dead]
    assert "user_id" in errors[0] and "Field required" in errors[0]
    assert "unexpected_0" in errors[1]
    assert len(errors[1]) <= 2000  # a dead letter stays small, however broken the entry
    assert await relay.drain_once() == 0


async def test_a_writer_racing_the_relay_over_an_invalid_entry_keeps_its_event(
    mongo: AsyncMongoClient[Any], hooked: HookedRedis, namespace: str
) -> None:
    """The relay tells entries apart by event id, and an invalid one (none) by its content."""
    relay = OutboxRelay(hooked, f"{namespace}events", [Note])
    broken = {"type": "note.exploded"}
    collection = Note.get_pymongo_collection()
    inserted = await collection.insert_one(
        {"owner": "u1", "text": "a", "version": 1, "deleted": False}
        | {"outbox": [broken], "outbox_pending": True}
    )
    racing = event("u1", "racing")

    async def writer_adds_an_event() -> None:
        hooked.after_publish = None
        await collection.update_one(
            {"_id": inserted.inserted_id},
            {"$set": {"outbox": [broken, racing.model_dump(mode="json")]}, "$inc": {"version": 1}},
        )

    hooked.after_publish = writer_adds_an_event
    assert await relay.drain_once() == 1  # the dead letter
    doc = await raw(inserted.inserted_id)
    assert doc is not None
    assert [Envelope.model_validate(e) for e in doc["outbox"]] == [racing]
    assert await relay.drain_once() == 1
    assert ids(await published(hooked, f"{namespace}events")) == [racing.event_id]


class Wakeups:
    """The relay's notify as a repository sees it: counts the wake-ups."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, model: type[OutboxDocument]) -> None:
        assert model is Note  # the class written, so the relay reads only that one
        self.count += 1


async def test_each_write_returns_the_document_as_stored_ready_for_the_next_write(
    mongo: AsyncMongoClient[Any],
) -> None:
    wakeups = Wakeups()
    repo = OutboxRepository(Note, wakeups)
    note = await repo.insert(Note(owner="u1", text="a"), event("u1", "a"))
    tags = [entity_tag(note)]
    renamed = await repo.write(note, {"text": "b"}, event("u1", "b"))
    assert renamed is not None
    quiet = await repo.write(renamed, {"text": "c"}, None)  # a change no consumer hears of
    assert quiet is not None
    gone = await repo.write(quiet, {"text": "d"}, event("u1", "d"), delete=True)
    assert gone is not None and gone.deleted is True
    for written in (renamed, quiet, gone):
        tags.append(entity_tag(written))
    assert len(set(tags)) == 4  # every write a new ETag, never an old one again
    stored = await raw(note.id)
    assert stored is not None
    assert (stored["version"], stored["revision"], stored["text"]) == (
        gone.version,
        gone.revision,
        "d",
    )
    assert bool(stored["deleted"]) is True
    assert [e["payload"]["timezone"] for e in stored["outbox"]] == ["a", "b", "d"]
    assert wakeups.count == 3  # the insert and the two writes with an event
    assert await repo.write(gone, {"text": "e"}, event("u1", "e")) is None  # a tombstone


async def test_an_insert_may_wake_the_relay_later_and_the_sweep_finds_it_anyway(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    wakeups = Wakeups()
    repo = OutboxRepository(Note, wakeups)
    created = event("u1", "a")
    await repo.insert(Note(owner="u1", text="a"), created, publish=False)
    assert wakeups.count == 0
    repo.publish()
    assert wakeups.count == 1
    assert await OutboxRelay(redis, f"{namespace}events", [Note]).drain_once() == 1


async def test_change_without_a_precondition_and_a_build_with_nothing_to_change(
    mongo: AsyncMongoClient[Any],
) -> None:
    repo = OutboxRepository(Note)
    note, _ = await create("u1", "a")

    async def load() -> Note | None:
        return await Note.get(note.id)

    def rename_to_b(current: Note) -> tuple[dict[str, Any], Envelope] | None:
        return None if current.text == "b" else ({"text": "b"}, event(current.owner, "b"))

    written = await repo.change(load, rename_to_b)
    assert written is not None and written.text == "b"
    unchanged = await repo.change(load, rename_to_b)  # nothing to change: no write at all
    assert unchanged is not None and entity_tag(unchanged) == entity_tag(written)
    stored = await raw(note.id)
    assert stored is not None and len(stored["outbox"]) == 2


async def test_tombstone_each_tombstones_every_document_the_batches_find(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    repo = OutboxRepository(Note)
    notes = [(await create("u1", text))[0] for text in ("a", "b", "c")]
    kept, _ = await create("u2", "a")

    async def batch() -> list[Note]:
        return await Note.find({"owner": "u1", "deleted": False}).limit(2).to_list()

    def delete(current: Note) -> tuple[dict[str, Any], Envelope]:
        return {}, event(current.owner, "deleted")

    assert await repo.tombstone_each(batch, Note.get, delete) == 3
    for note in notes:
        doc = await raw(note.id)
        assert doc is not None and bool(doc["deleted"]) is True
    assert await OutboxRelay(redis, f"{namespace}events", [Note]).drain_once() == 7
    assert [await raw(note.id) for note in notes] == [None, None, None]
    assert await raw(kept.id) is not None


async def test_a_written_document_reads_as_stored_pending_while_its_events_wait(
    mongo: AsyncMongoClient[Any],
) -> None:
    """What ``write`` returns is what a read of the document gives, the pending flag too."""
    repo = OutboxRepository(Note)
    note, _ = await create("u1", "a")
    renamed = await repo.write(note, {"text": "b"}, event("u1", "b"))
    assert renamed is not None
    quiet = await repo.write(renamed, {"text": "c"}, None)
    assert quiet is not None
    for written in (renamed, quiet):
        stored = await raw(note.id)
        assert stored is not None
        assert bool(stored["outbox_pending"]) is True  # two events wait for the relay
        assert written.outbox_pending is True


def renamed_to(text: str) -> Callable[[Note], tuple[dict[str, Any], Envelope]]:
    return lambda current: ({"text": text}, event(current.owner, text))


async def test_change_writes_the_document_already_read_and_reads_again_only_after_a_lost_race(
    mongo: AsyncMongoClient[Any],
) -> None:
    repo = OutboxRepository(Note)
    note, _ = await create("u1", "a")
    loads = 0

    async def load() -> Note | None:
        nonlocal loads
        loads += 1
        return await Note.get(note.id)

    written = await repo.change(load, renamed_to("b"), first=note)
    assert written is not None and written.text == "b"
    assert loads == 0  # `first` is the first attempt's read
    # `note` is stale now: the first attempt loses, the retry reads once and wins.
    written = await repo.change(load, renamed_to("c"), first=note)
    assert written is not None and written.text == "c"
    assert loads == 1
    stored = await raw(note.id)
    assert stored is not None and stored["text"] == "c"


async def test_each_lost_race_pauses_by_the_retry_policy_and_the_last_one_is_a_409(
    mongo: AsyncMongoClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pause itself is random (jitter): recorded here instead of slept."""
    pauses: list[int] = []

    async def recorded(attempt: int) -> None:
        pauses.append(attempt)

    monkeypatch.setattr(outbox_module, "backoff", recorded)
    repo = OutboxRepository(Note)
    note, _ = await create("u1", "a")
    stale = await Note.get(note.id)
    await change(note.id, "b")

    async def load() -> Note | None:
        return await Note.get(note.id)

    written = await repo.change(load, renamed_to("c"), first=stale)
    assert written is not None and written.text == "c"
    assert pauses == [0]  # one lost race, one pause before the retry

    async def always_stale() -> Note | None:
        return stale

    pauses.clear()
    with pytest.raises(ProblemError) as lost:
        await repo.change(always_stale, renamed_to("d"))
    assert lost.value.status == 409
    assert pauses[: WRITE_ATTEMPTS - 1] == list(range(WRITE_ATTEMPTS - 1))
    stored = await raw(note.id)
    assert stored is not None and stored["text"] == "c"
