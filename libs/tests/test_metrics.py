"""Prometheus series: the HTTP middleware, store timings, relay, consumer, scrape-time gauges.

Each test reads this process's registry before and after, against the real stores."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from momentum_libs.app import create_service_app
from momentum_libs.background import stop_background
from momentum_libs.consumer import StreamConsumer
from momentum_libs.events import Envelope, EventType, UserPayload
from momentum_libs.metrics import Gauges, HttpMetricsMiddleware
from momentum_libs.mongo import init_documents, mongo_client
from momentum_libs.outbox import OUTBOX_INDEX, OutboxDocument, OutboxRepository
from momentum_libs.redis_client import redis_client
from momentum_libs.relay import OutboxRelay
from momentum_libs.settings import ServiceSettings
from momentum_libs.stores import start_nx_mongo
from momentum_libs.testing.metrics import sample
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send

Eventually = Callable[..., Awaitable[None]]


class Memo(OutboxDocument):
    owner: str

    class Settings:
        name = "memos"
        indexes = [OUTBOX_INDEX]


@pytest.fixture
async def mongo(mongodb_url: str, namespace: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client = mongo_client(mongodb_url, 5000)
    database = f"{namespace}metrics"
    await init_documents(client, database, [Memo])
    try:
        yield client
    finally:
        await client.drop_database(database)
        await client.close()


def event(user_id: str = "u1", occurred_at: datetime | None = None) -> Envelope:
    envelope = Envelope.create(EventType.USER_UPDATED, user_id, UserPayload(timezone="UTC"))
    if occurred_at is not None:
        envelope = envelope.model_copy(update={"occurred_at": occurred_at})
    return envelope


def requests(method: str, route: str, status: int) -> float:
    return sample("momentum_http_requests_total", method=method, route=route, status=str(status))


# -- HTTP ------------------------------------------------------------------------------------


@asynccontextmanager
async def no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def service_app() -> FastAPI:
    app = create_service_app("metrics-test", ServiceSettings(), no_lifespan, title="t")

    @app.get("/widgets/{widget_id}")
    async def widget(widget_id: str) -> dict[str, str]:
        return {"id": widget_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    return app


async def test_requests_are_counted_by_route_template_never_by_raw_path() -> None:
    app = service_app()
    before = {
        "widget": requests("GET", "/widgets/{widget_id}", 200),
        "unmatched": requests("GET", "unmatched", 404),
        "other": requests("other", "unmatched", 404),
        "boom": requests("GET", "/boom", 500),
    }
    timed = sample(
        "momentum_http_request_duration_seconds_count", method="GET", route="/widgets/{widget_id}"
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for widget_id in ("a", "b", "user-123"):
            assert (await client.get(f"/widgets/{widget_id}")).status_code == 200
        assert (await client.get("/no/such/path")).status_code == 404
        assert (await client.request("BREW", "/no/such/path")).status_code == 404
        assert (await client.get("/boom")).status_code == 500
    assert requests("GET", "/widgets/{widget_id}", 200) == before["widget"] + 3
    assert requests("GET", "unmatched", 404) == before["unmatched"] + 1
    assert requests("other", "unmatched", 404) == before["other"] + 1  # methods are bounded
    assert requests("GET", "/boom", 500) == before["boom"] + 1
    assert requests("GET", "/widgets/user-123", 200) == 0  # no raw path, ever
    assert (
        sample(
            "momentum_http_request_duration_seconds_count",
            method="GET",
            route="/widgets/{widget_id}",
        )
        == timed + 3
    )


async def test_a_route_of_its_own_labels_what_the_router_never_sees() -> None:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = HttpMetricsMiddleware(answer, route_of=lambda scope: "/things/{path}")
    before = requests("DELETE", "/things/{path}", 204)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.delete("/things/42")).status_code == 204
    assert requests("DELETE", "/things/{path}", 204) == before + 1


async def test_metrics_are_served_and_left_out_of_the_openapi_document() -> None:
    app = service_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/widgets/a")
        response = await client.get("/metrics")
        document = (await client.get("/openapi.json")).json()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'momentum_http_requests_total{method="GET",route="/widgets/{widget_id}"' in (
        response.text
    )
    assert "process_cpu_seconds_total" in response.text
    assert "/metrics" not in document["paths"]


# -- stores ----------------------------------------------------------------------------------


def store_calls(store: str, command: str) -> float:
    return sample("momentum_store_duration_seconds_count", store=store, command=command)


async def test_redis_commands_and_pipelines_are_timed(redis_url: str, namespace: str) -> None:
    client = redis_client(redis_url, 2000)
    before = {name: store_calls("redis", name) for name in ("set", "get", "pipeline", "multi")}
    try:
        await client.set(f"{namespace}k", "v")
        await client.get(f"{namespace}k")
        async with client.pipeline(transaction=False) as pipe:
            pipe.get(f"{namespace}k")
            pipe.get(f"{namespace}k")
            await pipe.execute()
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(f"{namespace}k")
            await pipe.execute()
    finally:
        await client.aclose()
    after = {name: store_calls("redis", name) for name in before}
    assert after == {name: value + 1 for name, value in before.items()}


async def test_mongodb_commands_are_timed_by_name(mongo: AsyncMongoClient[Any]) -> None:
    before = {name: store_calls("mongodb", name) for name in ("insert", "find")}
    await OutboxRepository(Memo).insert(Memo(owner="u1"), event())
    await Memo.find_one(Memo.owner == "u1")
    assert store_calls("mongodb", "insert") == before["insert"] + 1
    assert store_calls("mongodb", "find") >= before["find"] + 1


# -- relay and outbox gauges ------------------------------------------------------------------


async def gauges_of(source: Any) -> dict[tuple[str, str], float]:
    """{(series name, label value): value} of one scrape of ``source.metrics``."""
    gauges = Gauges()
    await source.metrics.gauges(gauges)
    return {
        (s.name, next(iter(s.labels.values()))): s.value
        for family in gauges.collect()
        for s in family.samples
    }


async def test_outbox_backlog_is_scraped_and_the_relay_counts_what_it_publishes(
    mongo: AsyncMongoClient[Any], redis: Redis, namespace: str
) -> None:
    relay = OutboxRelay(redis, f"{namespace}events", [Memo])
    old = datetime.now(UTC) - timedelta(minutes=5)
    await OutboxRepository(Memo).insert(Memo(owner="u1"), event(occurred_at=old))
    await OutboxRepository(Memo).insert(Memo(owner="u2"), event())
    await Memo.get_pymongo_collection().insert_one(
        {"owner": "u3", "version": 1, "deleted": False}
        | {"outbox": [{"type": "not.an.event"}], "outbox_pending": True}
    )
    pending = await gauges_of(relay)
    assert pending[("momentum_outbox_pending_documents", "memos")] == 3
    age = pending[("momentum_outbox_oldest_pending_age_seconds", "memos")]
    assert 300 <= age < 3600  # the five-minute-old event, not the new one

    published = sample("momentum_relay_published_total")
    dead = sample("momentum_relay_dead_lettered_total")
    invalid = sample("momentum_relay_failures_total", reason="invalid_entry")
    already = sample("momentum_relay_already_published_total")
    collection = Memo.get_pymongo_collection()
    first = await collection.find_one({"owner": "u1"})
    assert first is not None
    assert await relay.drain_once() == 3
    assert sample("momentum_relay_published_total") == published + 2
    assert sample("momentum_relay_dead_lettered_total") == dead + 1
    assert sample("momentum_relay_failures_total", reason="invalid_entry") == invalid + 1
    assert sample("momentum_relay_already_published_total") == already
    assert await gauges_of(relay) == {
        ("momentum_outbox_pending_documents", "memos"): 0,
        ("momentum_outbox_oldest_pending_age_seconds", "memos"): 0,
    }

    # As if a relay's clear had failed after its XADD: the event is pending again.
    pending_again = {"outbox": first["outbox"], "outbox_pending": True}
    await collection.update_one({"_id": first["_id"]}, {"$set": pending_again})
    assert await relay.drain_once() == 1
    assert sample("momentum_relay_published_total") == published + 2
    assert sample("momentum_relay_already_published_total") == already + 1


async def test_a_failed_relay_pass_is_counted_by_reason(
    mongo: AsyncMongoClient[Any], namespace: str, eventually: Eventually
) -> None:
    dead_redis = redis_client("redis://127.0.0.1:1/0", 200)  # nothing listens on port 1
    relay = OutboxRelay(dead_redis, f"{namespace}events", [Memo], max_backoff_s=0.2)
    await OutboxRepository(Memo).insert(Memo(owner="u1"), event())
    before = sample("momentum_relay_failures_total", reason="redis_unavailable")
    task = asyncio.create_task(relay.run())
    try:

        async def counted() -> bool:
            return sample("momentum_relay_failures_total", reason="redis_unavailable") > before

        await eventually(counted)
    finally:
        await stop_background(task)
        await dead_redis.aclose()
    assert sample("momentum_relay_failures_total", reason="unexpected") == 0


async def test_a_relay_with_mongodb_down_counts_each_pass_and_publishes_once_it_is_back(
    redis: Redis, namespace: str, tmp_path: Path, eventually: Eventually
) -> None:
    """MongoDB stopped under a running relay: every failed pass is counted as MongoDB's
    (not Redis's, not unexpected), the relay retries with a doubling pause up to its cap
    instead of dying, and the pending event goes out once MongoDB is back on the same
    port with the same data."""
    data = tmp_path / "mongo"
    url, server = start_nx_mongo(data, log_dir=tmp_path)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    client = mongo_client(url, 1500)  # each pass while it is down fails within 1.5 s
    stream = f"{namespace}events"
    relay = OutboxRelay(redis, stream, [Memo], sweep_interval_s=0.05, max_backoff_s=0.4)
    task: asyncio.Task[None] | None = None
    # Captured, not rendered: a rendered traceback per failed pass is slow.
    with structlog.testing.capture_logs() as logged:
        try:
            await init_documents(client, f"{namespace}metrics", [Memo])
            await OutboxRepository(Memo).insert(Memo(owner="u1"), event(), publish=False)
            server.stop()
            before = {
                reason: sample("momentum_relay_failures_total", reason=reason)
                for reason in ("mongodb_unavailable", "redis_unavailable", "unexpected")
            }
            task = asyncio.create_task(relay.run())

            async def failed_4_times() -> bool:
                now = sample("momentum_relay_failures_total", reason="mongodb_unavailable")
                return now >= before["mongodb_unavailable"] + 4

            await eventually(failed_4_times, timeout_s=60)
            assert not task.done()  # still retrying
            _, server = start_nx_mongo(data, port=port, log_dir=tmp_path)

            async def out() -> bool:
                return await redis.xlen(stream) == 1

            await eventually(out)
        finally:
            if task is not None:
                await stop_background(task)
            server.stop()
            await client.close()
    for reason in ("redis_unavailable", "unexpected"):
        assert sample("momentum_relay_failures_total", reason=reason) == before[reason]
    retries = [e["retry_in_s"] for e in logged if e["event"] == "outbox_relay_error"]
    assert retries[:4] == [0.1, 0.2, 0.4, 0.4]


# -- consumers ---------------------------------------------------------------------------------


def deliveries(group: str, outcome: str) -> float:
    return sample("momentum_consumer_deliveries_total", group=group, outcome=outcome)


async def test_consumer_deliveries_delay_and_gauges(redis: Redis, namespace: str) -> None:
    stream, group = f"{namespace}events", f"{namespace}group"
    seen: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        if envelope.user_id == "fails":
            raise RuntimeError("handler failed")
        seen.append(envelope)

    c = StreamConsumer(redis, stream, group, "c1", handler, block_ms=10, max_deliveries=1)
    await c.ensure_group()
    assert await gauges_of(c) == {
        ("momentum_consumer_lag_entries", group): 0,
        ("momentum_consumer_pending_entries", group): 0,
        ("momentum_consumer_oldest_pending_age_seconds", group): 0,
        ("momentum_consumer_dead_letters", group): 0,
    }
    a_minute_ago = datetime.now(UTC) - timedelta(minutes=1)
    for envelope in (event(occurred_at=a_minute_ago), event("fails")):
        await redis.xadd(stream, envelope.to_stream_fields())  # type: ignore[arg-type]
    await redis.xadd(stream, {"event": "not json"})
    assert (await gauges_of(c))[("momentum_consumer_lag_entries", group)] == 3

    before = {o: deliveries(group, o) for o in ("acked", "failed", "dead_lettered")}
    delays = sample("momentum_consumer_event_delay_seconds_count", group=group)
    slow = sample("momentum_consumer_event_delay_seconds_bucket", group=group, le="30.0")
    handled = sample("momentum_consumer_handle_duration_seconds_count", group=group)
    assert await c.process_once() == 3  # one acked, two dead-lettered (max_deliveries=1)
    assert {o: deliveries(group, o) for o in before} == {
        "acked": before["acked"] + 1,
        "failed": before["failed"],
        "dead_lettered": before["dead_lettered"] + 2,
    }
    assert sample("momentum_consumer_event_delay_seconds_count", group=group) == delays + 1
    # It occurred a minute before it was applied: not in the 30 s bucket.
    assert sample("momentum_consumer_event_delay_seconds_bucket", group=group, le="30.0") == slow
    assert sample("momentum_consumer_handle_duration_seconds_count", group=group) == handled + 2
    gauges = await gauges_of(c)
    assert gauges[("momentum_consumer_lag_entries", group)] == 0
    assert gauges[("momentum_consumer_dead_letters", group)] == 2


async def test_pending_entries_and_their_age_and_a_failed_delivery(
    redis: Redis, namespace: str
) -> None:
    stream, group = f"{namespace}events", f"{namespace}group"

    async def handler(_: Envelope) -> None:
        raise RuntimeError("handler failed")

    c = StreamConsumer(redis, stream, group, "c1", handler, block_ms=10, max_deliveries=5)
    await c.ensure_group()
    await redis.xadd(stream, event().to_stream_fields(), id="1000-0")  # type: ignore[arg-type]
    failed = deliveries(group, "failed")
    assert await c.process_once() == 0
    assert deliveries(group, "failed") == failed + 1
    gauges = await gauges_of(c)
    assert gauges[("momentum_consumer_pending_entries", group)] == 1
    # Entry 1000-0 entered the stream one second after the epoch: decades old.
    assert gauges[("momentum_consumer_oldest_pending_age_seconds", group)] > 1e9


async def test_lag_is_counted_where_redis_does_not_report_it(redis: Redis, namespace: str) -> None:
    """Redis 6.2's XINFO GROUPS has neither ``lag`` nor ``entries-read``."""
    stream, group = f"{namespace}events", f"{namespace}group"

    async def handler(_: Envelope) -> None:
        pass

    c = StreamConsumer(redis, stream, group, "c1", handler, block_ms=10)
    await c.ensure_group()
    first = await redis.xadd(stream, {"event": "x"})
    for _ in range(4):
        await redis.xadd(stream, {"event": "x"})
    as_on_6_2 = {"name": group, "last-delivered-id": first, "pending": 0}
    assert await c.metrics.group_lag(as_on_6_2) == 4
    as_on_7_without_lag = {**as_on_6_2, "entries-read": 1, "lag": None}
    assert await c.metrics.group_lag(as_on_7_without_lag) == 4
