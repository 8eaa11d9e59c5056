"""``as_of`` and ``pending`` against a real stream: what analytics says about its own lag."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from momentum_analytics.main import create_app
from momentum_libs.partitions import partition_of, partition_stream
from momentum_libs.testing.tokens import TestSigner
from redis.asyncio import Redis

from .analytics_support import FakeTracking
from .conftest import Service, SettingsFactory


@pytest.fixture
async def stopped_consumer(
    make_settings: SettingsFactory, signer: TestSigner
) -> AsyncIterator[tuple[httpx.AsyncClient, Redis, str, str]]:
    """The service with its consumer off: whatever is published stays pending."""
    settings = make_settings(consumer_enabled=False)
    app = create_app(settings, token_keys=signer.keys)
    redis = Redis.from_url(settings.redis_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
            yield client, redis, settings.events_stream, settings.consumer_group
    await redis.aclose()


async def test_unapplied_events_are_pending_until_the_group_has_them_all(
    stopped_consumer: tuple[httpx.AsyncClient, Redis, str, str], signer: TestSigner
) -> None:
    client, redis, stream, group = stopped_consumer
    headers = {"Authorization": f"Bearer {signer.mint('someone')}"}

    async def freshness() -> tuple[object, object]:
        body = (await client.get("/analytics/streak", headers=headers)).json()
        return body["as_of"], body["pending"]

    assert await freshness() == (None, False)  # no stream at all yet
    t = FakeTracking()
    t.register("UTC")
    await t.flush(redis, stream)
    assert await freshness() == (None, True)  # no group has read it
    await redis.xgroup_create(stream, group, id="0")
    assert await freshness() == (None, True)  # the group has not been delivered it
    entries = await redis.xreadgroup(group, "probe", {stream: ">"})
    assert await freshness() == (None, True)  # delivered, not acknowledged
    await redis.xack(stream, group, *(entry_id for entry_id, _ in entries[0][1]))
    assert await freshness() == (None, False)  # (acked without applying: as_of stays null)


async def test_as_of_is_the_newest_applied_event_and_a_deletion_clears_it(
    service: Service,
) -> None:
    t = FakeTracking()
    t.register("UTC")
    goal = t.create_goal()
    await service.send(t)
    body = (await service.get("/analytics/dashboard", t.user_id)).json()
    assert body["pending"] is False
    newest = max(e.occurred_at for e in t.sent)
    assert body["as_of"] == newest.strftime("%Y-%m-%dT%H:%M:%SZ")
    t.create_log(goal, datetime.now(UTC).date(), 15)
    t.delete_user()
    await service.send(t)
    assert (await service.get("/analytics/streak", t.user_id)).json()["as_of"] is None


async def test_on_a_partitioned_log_any_partitions_backlog_is_pending(
    make_settings: SettingsFactory, signer: TestSigner
) -> None:
    """``pending: false`` still means every published event is applied: another user's
    event in another partition than the reader's counts."""
    settings = make_settings(consumer_enabled=False, events_partitions=8)
    app = create_app(settings, token_keys=signer.keys)
    redis = Redis.from_url(settings.redis_url)
    reader = "someone"
    other = next(f"u{i}" for i in range(100) if partition_of(f"u{i}", 8) != partition_of(reader, 8))
    partition = partition_stream(settings.events_stream, partition_of(other, 8), 8)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as c:
                headers = {"Authorization": f"Bearer {signer.mint(reader)}"}

                async def pending() -> object:
                    return (await c.get("/analytics/streak", headers=headers)).json()["pending"]

                assert await pending() is False
                t = FakeTracking(user_id=other)
                t.register("UTC")
                await t.flush(redis, partition)  # the relay puts it in its user's partition
                assert await pending() is True
                group = settings.consumer_group
                await redis.xgroup_create(partition, group, id="0")
                entries = await redis.xreadgroup(group, "probe", {partition: ">"})
                await redis.xack(partition, group, *(entry_id for entry_id, _ in entries[0][1]))
                assert await pending() is False
    finally:
        await redis.delete(partition)
        await redis.aclose()
