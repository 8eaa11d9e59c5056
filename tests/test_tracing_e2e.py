"""One trace spans a ``POST /daily-logs``: gateway, tracking, the relay, analytics' consumer.

The services are real processes (a stack of their own, with ``OTEL_EXPORTER_OTLP_ENDPOINT``
set), so their spans cannot be read from an in-memory exporter in this process: they are
exported by the real OTLP/HTTP exporter to a small receiver here, which decodes the
protobuf as a collector would (``opentelemetry-proto``). The spans' joining inside one
process is tested with the SDK's in-memory exporter in ``libs/tests/test_tracing.py``.
"""

import gzip
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from momentum_libs.devstack import Stack
from momentum_libs.stores import free_port
from momentum_libs.testing.plugin import namespaced_stack, new_namespace
from momentum_libs.testing.waiting import eventually_blocking
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .conftest import new_account

CLIENT_TRACE = uuid.uuid4().hex
CLIENT_SPAN = uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    span: Span

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_id(self) -> str:
        return self.span.parent_span_id.hex()


class OtlpReceiver:
    """POST /v1/traces of OTLP/HTTP (protobuf), every span kept with its service's name."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.keep(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def keep(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                names = [
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ]
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(ReceivedSpan(names[0], span))

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture(scope="module")
def traced_stack(
    tmp_path_factory: pytest.TempPathFactory,
    mongodb_url: str,
    redis_url: str,
    receiver: OtlpReceiver,
) -> Iterator[Stack]:
    namespace = new_namespace("o")
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s, not the default 5 s
    }
    data_dir = tmp_path_factory.mktemp("traced-stack")
    with namespaced_stack(data_dir, mongodb_url, redis_url, namespace, env) as running:
        yield running


def the_one(spans: list[ReceivedSpan], service: str, kind: int, name: str) -> ReceivedSpan:
    found = [s for s in spans if s.service == service and s.span.kind == kind]
    found = [s for s in found if s.span.name == name]
    assert len(found) == 1, (service, name, [(s.service, s.span.name) for s in spans])
    return found[0]


def test_one_trace_spans_a_log_write_from_the_gateway_to_analytics_consumer(
    traced_stack: Stack, receiver: OtlpReceiver
) -> None:
    with httpx.Client(base_url=traced_stack.gateway_url, timeout=15) as gateway:
        account = new_account(gateway)
        goal = gateway.post("/goals", json={"title": "Traced"}, headers=account.headers)
        assert goal.status_code == 201, goal.text
        client_parent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
        written = gateway.post(
            "/daily-logs",
            json={"goal_id": goal.json()["id"], "date": "2026-11-20", "minutes": 25},
            headers={**account.headers, "traceparent": client_parent},
        )
        assert written.status_code == 201, written.text

    events = f"{traced_stack.events_stream}"
    expected = {
        ("gateway", Span.SPAN_KIND_SERVER, "POST /daily-logs"),
        ("gateway", Span.SPAN_KIND_CLIENT, "POST"),
        ("tracking", Span.SPAN_KIND_SERVER, "POST /daily-logs"),
        ("tracking", Span.SPAN_KIND_PRODUCER, f"publish {events}"),
        ("analytics", Span.SPAN_KIND_CONSUMER, f"process {events}"),
    }
    # Each process exports in batches of its own, so the relay's span may come after the
    # consumer's: wait for every span, not for every service.
    spans = eventually_blocking(
        lambda: receiver.trace(CLIENT_TRACE),
        lambda found: expected <= {(s.service, s.span.kind, s.span.name) for s in found},
    )
    edge = the_one(spans, "gateway", Span.SPAN_KIND_SERVER, "POST /daily-logs")
    upstream_call = the_one(spans, "gateway", Span.SPAN_KIND_CLIENT, "POST")
    served = the_one(spans, "tracking", Span.SPAN_KIND_SERVER, "POST /daily-logs")
    published = the_one(spans, "tracking", Span.SPAN_KIND_PRODUCER, f"publish {events}")
    consumed = the_one(spans, "analytics", Span.SPAN_KIND_CONSUMER, f"process {events}")
    # The chain, each span the child of the one before: the client's span, taken from its
    # traceparent, is the root.
    assert edge.parent_id == CLIENT_SPAN
    assert upstream_call.parent_id == edge.span_id
    assert served.parent_id == upstream_call.span_id
    assert published.parent_id == served.span_id
    assert consumed.parent_id == served.span_id  # the event carried the request's context
    consumed_type = {a.key: a.value.string_value for a in consumed.span.attributes}
    assert consumed_type["momentum.event.type"] == "log.created"
