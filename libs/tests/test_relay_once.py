"""One publication per event with several relays (replicas), against the real stores."""

import asyncio
from typing import Any

import pytest
from momentum_libs.background import stop_background
from momentum_libs.outbox import OutboxRepository
from momentum_libs.redis_client import redis_client
from momentum_libs.relay import OutboxRelay
from momentum_libs.stream_keys import beside, hash_tag
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from redis.crc import key_slot

from .conftest import Eventually
from .test_outbox import Note, create, event, ids, mongo, published, raw

__all__ = ["mongo"]  # the fixture, used by name

WRITES = 2_000
RELAYS = 3


def test_keys_beside_a_stream_share_its_slot_tagged_or_not() -> None:
    for stream in ("momentum.events", "{momentum.events}.p3", "t1_events"):
        claim = beside(stream, ".published.e1")
        assert key_slot(claim.encode()) == key_slot(stream.encode())
        assert claim.endswith(".published.e1")
    assert hash_tag("{momentum.events}.p3") == "momentum.events"
    assert hash_tag("a{}b{c}") == "a{}b{c}"  # an empty tag is no tag: the whole key
    assert hash_tag("plain") == "plain"


@pytest.mark.parametrize("mode", ["single", "cluster"])
async def test_three_relays_publish_each_of_2000_writes_once(
    mongo: AsyncMongoClient[Any],
    redis_url: str,
    namespace: str,
    eventually: Eventually,
    mode: str,
    request: pytest.FixtureRequest,
) -> None:
    """Three replicas, each relay on its own client, woken by its own process's writes
    and sweeping everyone's: every event is in the stream exactly once, on one Redis as
    on a 3-master Redis Cluster (the claim and the XADD share the stream's slot)."""
    url = redis_url if mode == "single" else request.getfixturevalue("redis_cluster_url")
    stream = f"{namespace}events"
    clients = [redis_client(url, 5000) for _ in range(RELAYS)]
    reader = redis_client(url, 5000)
    relays = [OutboxRelay(c, stream, [Note], sweep_interval_s=0.05) for c in clients]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    repos = [OutboxRepository(Note, relay.notify) for relay in relays]
    written: list[str] = []

    async def writer(replica: int) -> None:
        for i in range(replica, WRITES, RELAYS):
            ev = event(f"u{i % 50}", f"tz/{i}")
            await repos[replica].insert(Note(owner=f"u{i % 50}", text=str(i)), ev)
            written.append(ev.event_id)

    try:
        await asyncio.gather(*(writer(r) for r in range(RELAYS)))

        async def all_out() -> bool:
            return (
                await reader.xlen(stream) >= WRITES
                and not await Note.find({"outbox_pending": True}).count()
            )

        await eventually(all_out, timeout_s=120)
        entries = ids(await published(reader, stream))
    finally:
        for task, client in zip(tasks, clients, strict=True):
            await stop_background(task)
            await client.aclose()
        await reader.aclose()
    per_event = len(entries) / len(set(entries))
    print(f"\n{RELAYS} relays, {WRITES} writes: {per_event:.2f} publications per event")
    assert sorted(entries) == sorted(written)  # each once, none missing
    assert per_event == 1.0


async def test_an_event_left_pending_after_its_publication_is_not_published_again(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    """A relay whose clear failed (or a second replica that read the document before
    the clear) finds the event pending again: the claim keeps it out of the stream."""
    stream = f"{namespace}events"
    note, created = await create("u1", "a")
    before = await raw(note.id)
    assert before is not None
    assert await OutboxRelay(redis, stream, [Note]).drain_once() == 1
    collection = Note.get_pymongo_collection()
    await collection.update_one(  # as if the clear never happened
        {"_id": note.id}, {"$set": {"outbox": before["outbox"], "outbox_pending": True}}
    )
    other = OutboxRelay(redis, stream, [Note])
    assert await other.drain_once() == 1  # found it, skipped it, cleared it
    assert ids(await published(redis, stream)) == [created.event_id]
    after = await raw(note.id)
    assert after is not None and (after["outbox"], after["outbox_pending"]) == ([], False)
    ttl = await redis.pttl(other.claim_key(created.event_id))
    assert 0 < ttl <= 600_000  # the mark expires: it costs memory only while it matters


async def test_an_invalid_entry_beside_a_valid_one_neither_blocks_nor_repeats_it(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    """The valid event is published once even when the invalid entry beside it stays
    (a clear that keeps failing): every pass dead-letters it again, never the event."""
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [Note])
    valid = event("u1", "Asia/Tokyo").model_dump(mode="json")
    outbox = {"outbox": [{"type": "note.exploded"}, valid], "outbox_pending": True}
    inserted = await Note.get_pymongo_collection().insert_one(
        {"owner": "u1", "text": "b", "version": 1, "deleted": False} | outbox
    )
    for _ in range(3):
        assert await relay.drain_once() == 2
        await Note.get_pymongo_collection().update_one(
            {"_id": inserted.inserted_id}, {"$set": outbox}
        )
    assert ids(await published(redis, stream)) == [valid["event_id"]]
    assert await redis.xlen(relay.dead_letter_stream) == 3
