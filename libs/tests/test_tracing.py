"""Traces: the trace context without the SDK (logs, outbox), and with the SDK's in-memory
exporter the spans of a write's event: published by the relay, handled by the consumer,
both in the trace of the request that wrote it. Real MongoDB-compatible server, real Redis."""

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from momentum_libs.app import create_service_app
from momentum_libs.consumer import StreamConsumer
from momentum_libs.events import Envelope, EventType, UserPayload
from momentum_libs.mongo import init_documents, mongo_client
from momentum_libs.outbox import OUTBOX_INDEX, OutboxDocument, OutboxRepository, traced
from momentum_libs.relay import OutboxRelay
from momentum_libs.settings import ServiceSettings
from momentum_libs.tracing import current_traceparent
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.test.globals_test import reset_trace_globals
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from redis.asyncio import Redis

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"


class Profile(OutboxDocument):
    owner: str

    class Settings:
        name = "profiles"
        indexes = [OUTBOX_INDEX]


def user_event(owner: str) -> Envelope:
    return Envelope.create(EventType.USER_UPDATED, owner, UserPayload(timezone="UTC"))


def lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """The SDK installed for this test only, its spans kept in memory."""
    reset_trace_globals()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    try:
        yield spans
    finally:
        provider.shutdown()
        reset_trace_globals()  # the other tests run as a service does by default: no SDK


@pytest.fixture
async def profiles(mongodb_url: str, namespace: str) -> AsyncIterator[None]:
    client = mongo_client(mongodb_url, 5000)
    database = f"{namespace}tracing"
    await init_documents(client, database, [Profile])
    try:
        yield
    finally:
        await client.drop_database(database)
        await client.close()


def traced_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = create_service_app("trace-test", ServiceSettings(), lifespan, title="t")

    @app.get("/where")
    async def where() -> dict[str, str | None]:
        structlog.get_logger("trace-test").info("inside")
        logging.getLogger("uvicorn.error").info("a line of uvicorn's own")
        return {"traceparent": current_traceparent()}

    return app


async def get_where(headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=traced_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/where", headers=headers)


async def test_without_the_sdk_the_clients_trace_is_continued_and_every_line_carries_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its level is uvicorn's (--log-level): an in-process uvicorn of another test may have
    # raised it.
    monkeypatch.setattr(logging.getLogger("uvicorn.error"), "level", logging.INFO)
    response = await get_where({"traceparent": CLIENT_PARENT, "x-request-id": "req-1"})
    assert response.json() == {"traceparent": CLIENT_PARENT}
    logged = lines(capsys.readouterr().err)
    by_event = {line["event"]: line for line in logged}
    assert {"inside", "a line of uvicorn's own", "request"} <= by_event.keys()
    for event in ("inside", "a line of uvicorn's own", "request"):
        assert by_event[event]["trace_id"] == CLIENT_TRACE
        assert by_event[event]["request_id"] == "req-1"
        assert by_event[event]["service"] == "trace-test"
    assert by_event["a line of uvicorn's own"]["logger"] == "uvicorn.error"


@pytest.mark.parametrize("incoming", [None, "00-not-a-trace-01", f"00-{'0' * 32}-{'1' * 16}-01"])
async def test_without_a_valid_traceparent_a_request_starts_an_unsampled_trace(
    incoming: str | None,
) -> None:
    response = await get_where({"traceparent": incoming} if incoming else {})
    started = response.json()["traceparent"]
    version, trace_id, span_id, flags = started.split("-")
    assert (version, flags) == ("00", "00")  # nothing records it
    assert len(trace_id) == 32 and int(trace_id, 16) != 0
    assert len(span_id) == 16 and int(span_id, 16) != 0
    other = (await get_where({"traceparent": incoming} if incoming else {})).json()
    assert other["traceparent"].split("-")[1] != trace_id  # one trace per request


def test_an_event_written_in_a_request_carries_its_trace_context() -> None:
    assert traced(user_event("u")).traceparent is None  # no request, no trace
    span = NonRecordingSpan(
        SpanContext(int(CLIENT_TRACE, 16), 0xABC, is_remote=True, trace_flags=TraceFlags(1))
    )
    token = context.attach(trace.set_span_in_context(span))
    try:
        assert traced(user_event("u")).traceparent == f"00-{CLIENT_TRACE}-{0xABC:016x}-01"
        own = user_event("u").model_copy(update={"traceparent": CLIENT_PARENT})
        assert traced(own).traceparent == CLIENT_PARENT  # a relayed event keeps its own
    finally:
        context.detach(token)


def by_name(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


async def write_in_a_request(owner: str) -> ReadableSpan:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /profiles", kind=SpanKind.SERVER) as request:
        await OutboxRepository(Profile).insert(Profile(owner=owner), user_event(owner))
    assert isinstance(request, ReadableSpan)
    return request


async def test_the_relays_and_the_consumers_spans_join_the_trace_of_the_write(
    exporter: InMemorySpanExporter, profiles: None, redis: Redis, namespace: str
) -> None:
    request = await write_in_a_request("u1")
    stream = f"{namespace}events"
    assert await OutboxRelay(redis, stream, [Profile]).drain_once() == 1

    seen: list[str | None] = []

    async def handler(envelope: Envelope) -> None:
        seen.append(current_traceparent())

    consumer = StreamConsumer(redis, stream, f"{namespace}g", "c1", handler)
    await consumer.ensure_group()
    assert await consumer.process_once() == 1

    spans = exporter.get_finished_spans()
    (publish,) = by_name(spans, f"publish {stream}")
    (process,) = by_name(spans, f"process {stream}")
    trace_id = request.context.trace_id
    for span, kind in ((publish, SpanKind.PRODUCER), (process, SpanKind.CONSUMER)):
        assert span.kind is kind
        assert span.context.trace_id == trace_id
        assert span.parent is not None and span.parent.span_id == request.context.span_id
    assert process.attributes is not None
    assert process.attributes["messaging.consumer.group.name"] == f"{namespace}g"
    # While the handler ran, the consumer's span was current: its log lines carry the trace.
    (current,) = seen
    assert current is not None
    assert current.split("-")[1:3] == [f"{trace_id:032x}", f"{process.context.span_id:016x}"]


async def test_a_batch_is_handled_in_the_first_events_trace_linked_to_the_others(
    exporter: InMemorySpanExporter, profiles: None, redis: Redis, namespace: str
) -> None:
    first, second = await write_in_a_request("u1"), await write_in_a_request("u1")
    stream = f"{namespace}events"
    assert await OutboxRelay(redis, stream, [Profile]).drain_once() == 2

    async def one(envelope: Envelope) -> None:
        raise AssertionError("the batch handler takes them")

    async def batch(envelopes: list[Envelope]) -> None:
        assert len(envelopes) == 2

    consumer = StreamConsumer(redis, stream, f"{namespace}g", "c1", one, batch_handler=batch)
    await consumer.ensure_group()
    assert await consumer.process_once() == 2
    (process,) = by_name(exporter.get_finished_spans(), f"process {stream}")
    # The relay publishes the two documents in no set order: whichever came first is the
    # parent, the other a link.
    linked = [(link.context.trace_id, link.context.span_id) for link in process.links]
    assert process.parent is not None
    handled = {(process.context.trace_id, process.parent.span_id), *linked}
    writes = {(w.context.trace_id, w.context.span_id) for w in (first, second)}
    assert len(linked) == 1
    assert handled == writes


async def test_an_event_without_trace_context_is_handled_in_a_trace_of_its_own(
    exporter: InMemorySpanExporter, redis: Redis, namespace: str
) -> None:
    """Events written before the field existed (or by a tool): still handled, and traced."""
    stream = f"{namespace}events"
    old = user_event("u1")
    assert old.traceparent is None
    await redis.xadd(stream, old.to_stream_fields())
    handled: list[str] = []

    async def handler(envelope: Envelope) -> None:
        handled.append(envelope.event_id)

    consumer = StreamConsumer(redis, stream, f"{namespace}g", "c1", handler)
    await consumer.ensure_group()
    assert await consumer.process_once() == 1
    assert handled == [old.event_id]
    (process,) = by_name(exporter.get_finished_spans(), f"process {stream}")
    assert process.parent is None
