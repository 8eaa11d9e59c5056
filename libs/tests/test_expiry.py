"""TTL indexes: as declared on MongoDB, swept by us on the embedded server (nx-27017)."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from beanie import Document
from momentum_libs.background import BackgroundTasks, stop_background
from momentum_libs.clock import utcnow
from momentum_libs.expiry import Expiries, create_indexes, is_embedded
from momentum_libs.mongo import init_documents, mongo_client
from momentum_libs.sharding import read_violations
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from .conftest import Eventually


class Ticket(Document):
    owner: str
    expires_at: Any = None

    class Settings:
        name = "tickets"
        indexes = [
            IndexModel([("owner", 1)], name="owner"),
            IndexModel([("expires_at", 1)], name="expires", expireAfterSeconds=0),
        ]


@pytest.fixture
async def db(mongodb_url: str, namespace: str) -> AsyncIterator[AsyncDatabase[Any]]:
    client: AsyncMongoClient[Any] = mongo_client(mongodb_url, 5000)
    name = f"{namespace}expiry"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


def running_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if not t.done()]


async def options_of(db: AsyncDatabase[Any], collection: str, field: str) -> dict[str, Any]:
    """The options of the index on ``field`` (by key: nx-27017 names indexes itself)."""
    info = await db[collection].index_information()
    (found,) = [i for i in info.values() if i["key"] == [(field, 1)]]
    return dict(found)


async def test_the_test_server_is_recognised_as_the_embedded_one(
    db: AsyncDatabase[Any],
) -> None:
    assert await is_embedded(db)


async def test_on_the_embedded_server_ttl_indexes_are_plain_and_swept(
    db: AsyncDatabase[Any],
) -> None:
    expiries = await init_documents(db.client, db.name, [Ticket])
    assert expiries.embedded
    assert "expireAfterSeconds" not in await options_of(db, "tickets", "expires_at")
    assert "expireAfterSeconds" not in await options_of(db, "tickets", "owner")
    assert [(e.collection.name, e.field, e.after_s) for e in expiries.swept] == [
        ("tickets", "expires_at", 0)
    ]
    now = utcnow()
    await db["tickets"].insert_many(
        [
            {"owner": "past", "expires_at": now - timedelta(minutes=1)},
            {"owner": "future", "expires_at": now + timedelta(hours=1)},
            {"owner": "never"},  # no date: MongoDB's TTL keeps it too
        ]
    )
    # A read does not purge (the reason for all this): the expired ticket is still there.
    assert await db["tickets"].count_documents({"owner": "past"}) == 1
    assert await expiries.sweep_once() == 1
    left = sorted([d["owner"] async for d in db["tickets"].find({})])
    assert left == ["future", "never"]


async def test_the_sweep_passes_the_shard_key_audit(
    mongodb_url: str, namespace: str, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    client = mongo_client(mongodb_url, 5000, audit)
    try:
        expiries = Expiries(embedded=True)
        index = IndexModel([("purge_at", 1)], name="purge", expireAfterSeconds=0)
        await expiries.create(client[f"{namespace}expiry"]["daily_logs"], index)
        assert await expiries.sweep_once() == 0
    finally:
        await client.drop_database(f"{namespace}expiry")
        await client.close()
    assert read_violations(audit) == []


async def test_a_lifetime_counts_from_the_field_s_date(db: AsyncDatabase[Any]) -> None:
    expiries = Expiries(embedded=True)
    index = IndexModel([("seen_at", 1)], name="seen", expireAfterSeconds=3600)
    await expiries.create(db["visits"], index)
    now = utcnow()
    await db["visits"].insert_many(
        [
            {"n": "two hours ago", "seen_at": now - timedelta(hours=2)},
            {"n": "half an hour ago", "seen_at": now - timedelta(minutes=30)},
        ]
    )
    assert await expiries.sweep_once() == 1
    assert [d["n"] async for d in db["visits"].find({})] == ["half an hour ago"]


async def test_a_ttl_index_left_by_an_earlier_version_is_replaced_on_the_embedded_server(
    db: AsyncDatabase[Any],
) -> None:
    await db["tickets"].create_index([("expires_at", 1)], name="expires", expireAfterSeconds=0)
    expiries = await init_documents(db.client, db.name, [Ticket])
    assert "expireAfterSeconds" not in await options_of(db, "tickets", "expires_at")
    assert expiries.swept


async def test_on_mongodb_the_index_is_a_ttl_one_and_a_new_lifetime_changes_it(
    db: AsyncDatabase[Any],
) -> None:
    # The MongoDB path, on a server that accepts TTL options and collMod.
    expiries = Expiries(embedded=False)
    for seconds in (7200, 10800):
        index = IndexModel([("seen_at", 1)], name="seen", expireAfterSeconds=seconds)
        await expiries.create(db["visits"], index)
        assert (await options_of(db, "visits", "seen_at"))["expireAfterSeconds"] == seconds
    assert expiries.swept == []  # MongoDB's own monitor deletes them
    expiries.start_sweeping(BackgroundTasks())
    assert "expiry-sweep" not in running_tasks()


async def test_create_indexes_creates_what_the_models_declare_on_mongodb(
    db: AsyncDatabase[Any],
) -> None:
    await init_documents(db.client, db.name, [Ticket])
    await db["tickets"].drop_indexes()
    await create_indexes([Ticket], Expiries(embedded=False))
    assert (await options_of(db, "tickets", "expires_at"))["expireAfterSeconds"] == 0
    assert "expireAfterSeconds" not in await options_of(db, "tickets", "owner")


async def test_the_sweep_runs_among_the_background_loops_until_stopped(
    db: AsyncDatabase[Any], eventually: Eventually
) -> None:
    expiries = Expiries(embedded=True)
    index = IndexModel([("expires_at", 1)], name="expires", expireAfterSeconds=0)
    await expiries.create(db["tickets"], index)
    background = BackgroundTasks()
    task = asyncio.create_task(expiries.run(interval_s=0.05))
    try:
        await db["tickets"].insert_one({"expires_at": utcnow() - timedelta(seconds=1)})

        async def swept() -> bool:
            return await db["tickets"].count_documents({}) == 0

        await eventually(swept)
        # Swept again and again, not once: a second expired ticket goes too.
        await db["tickets"].insert_one({"expires_at": utcnow() - timedelta(seconds=1)})
        await eventually(swept)
    finally:
        await stop_background(task)
    expiries.start_sweeping(background)
    assert "expiry-sweep" in running_tasks()
    await background.stop()
    assert "expiry-sweep" not in running_tasks()
