"""Traces: W3C trace context always, OpenTelemetry spans exported only when configured.

Two modes, chosen once per process by :func:`configure_tracing`:

- **Exporting** (``OTEL_EXPORTER_OTLP_ENDPOINT`` set): the OpenTelemetry SDK with a
  batching OTLP/HTTP exporter; a server span per request (``OpenTelemetryMiddleware``),
  a producer span per event the relay publishes, a consumer span per event handled.
  The SDK reads the standard ``OTEL_*`` variables itself (sampler, resource, batching).
- **Not exporting** (the default): no SDK. A request's ``traceparent`` is still taken
  (or one started, flagged not sampled) by :class:`TraceContextMiddleware`, so log lines
  carry a trace id, the gateway forwards it, the outbox writes it into each event and
  the consumer continues it: logs of a request and of the events it caused share one
  trace id. The OpenTelemetry API's no-op tracer passes the parent context through, so
  the relay and consumer code is the same in both modes; the cost is a header parse and
  a context switch, a few microseconds per request.

Only ``traceparent`` travels (gateway → services, request → event); ``tracestate`` and
baggage do not.
"""

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator()
TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})
"""A client's trace fields: a proxy replaces them with the context it continues."""

SpanName = Callable[[Scope], str | None]
"""A request's span name (low cardinality: a route template), or None for the method alone."""


def _tracer() -> trace.Tracer:
    # Asked each time, not kept: a proxy tracer would stay bound to the first provider.
    # Without the SDK it is the API's no-op tracer, which passes the parent through.
    return trace.get_tracer("momentum_libs")


def exporting() -> bool:
    """True once an SDK provider is installed (spans are recorded somewhere)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def configure_tracing(service: str, otlp_endpoint: str | None) -> bool:
    """Install the SDK exporting over OTLP/HTTP, once per process, when an endpoint is set.

    ``service`` is the resource's ``service.name`` unless ``OTEL_SERVICE_NAME`` (or
    ``OTEL_RESOURCE_ATTRIBUTES``) says otherwise. Returns whether spans are exported.
    """
    if not otlp_endpoint or exporting():
        return exporting()
    # Imported here: a process that does not export never loads the SDK or protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: service}).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)  # the sampler: OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_BSP_*, OTLP_*
    trace.set_tracer_provider(provider)
    return True


def route_template(scope: Scope) -> str | None:
    """The template of the route that answered (``/goals/{goal_id}``): Starlette leaves
    the route it matched in the scope."""
    path = getattr(scope.get("route"), "path", None)
    return str(path) if path else None


def install_tracing(app: Any, span_name: SpanName = route_template) -> None:
    """The outermost middleware of ``app``: a server span when exporting, else the bare
    trace context (:class:`TraceContextMiddleware`). Call after every other ``add_middleware``."""
    if not exporting():
        app.add_middleware(TraceContextMiddleware)
        return
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.util.http import ExcludeList

    app.add_middleware(_SpanNamedByRoute, span_name=span_name)
    app.add_middleware(
        OpenTelemetryMiddleware,
        # Probes would each be a trace of their own, and say nothing.
        excluded_urls=ExcludeList(["/health", "/livez"]),
        exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
        # Named by the method until routed (a path would make one name per id).
        default_span_details=lambda scope: (str(scope.get("method", "HTTP")), {}),
    )


class _SpanNamedByRoute:
    """Just inside the server span: names it ``METHOD <template>`` when the answer starts
    (the route is known by then; the span ends with the last byte of the body)."""

    def __init__(self, app: ASGIApp, span_name: SpanName) -> None:
        self.app = app
        self.span_name = span_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = trace.get_current_span()

        async def send_naming(message: Message) -> None:
            if message["type"] == "http.response.start":
                name = self.span_name(scope)
                if name:
                    span.update_name(f"{scope['method']} {name}")
                    span.set_attribute("http.route", name)
            await send(message)

        await self.app(scope, receive, send_naming)


def _new_span_context() -> SpanContext:
    # Not sampled: nothing records it. A process that exports and receives it records
    # nothing either (parent-based sampling): turn tracing on in every process at once.
    return SpanContext(
        # Not a secret: random's generator, as the SDK's own id generator uses.
        trace_id=random.getrandbits(128) or 1,
        span_id=random.getrandbits(64) or 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )


def _extract(traceparent: str | None) -> context.Context:
    """The context a ``traceparent`` value names; empty when it is absent or malformed."""
    if not traceparent:
        return context.Context()
    return _propagator.extract({TRACEPARENT: traceparent})


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


class TraceContextMiddleware:
    """Without the SDK: the request's trace context, taken from ``traceparent`` or started
    here, made current for the request (logs, the outbox, the gateway's upstream call)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = _extract(_header(scope, b"traceparent"))
        if not trace.get_current_span(ctx).get_span_context().is_valid:
            ctx = trace.set_span_in_context(NonRecordingSpan(_new_span_context()), ctx)
        token = context.attach(ctx)
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)


def current_traceparent() -> str | None:
    """The current span's context as a ``traceparent`` value, None when there is none."""
    ctx = trace.get_current_span().get_span_context()
    return _traceparent(ctx.trace_id, ctx.span_id, ctx.trace_flags) if ctx.is_valid else None


# A request asks for its ids several times (each log line, the upstream call, the outbox):
# formatted once per span.
@lru_cache(maxsize=256)
def _traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


@lru_cache(maxsize=256)
def _log_ids(trace_id: int, span_id: int) -> tuple[tuple[str, str], ...]:
    return (("trace_id", f"{trace_id:032x}"), ("span_id", f"{span_id:016x}"))


def trace_headers() -> list[tuple[bytes, bytes]]:
    """The current context as the fields of an outgoing request (``traceparent``)."""
    traceparent = current_traceparent()
    return [(b"traceparent", traceparent.encode("ascii"))] if traceparent else []


def trace_ids() -> tuple[tuple[str, str], ...]:
    """``trace_id`` and ``span_id`` of the current span, for a log line; empty without one."""
    ctx = trace.get_current_span().get_span_context()
    return _log_ids(ctx.trace_id, ctx.span_id) if ctx.is_valid else ()


def _messaging(stream: str, event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "messaging.system": "redis",
        "messaging.destination.name": stream,
        "messaging.message.id": str(event.get("event_id", "")),
        "momentum.event.type": str(event.get("type", "")),
    }


@contextmanager
def publishing(stream: str, events: list[Any]) -> Iterator[None]:
    """A producer span per event while they are published, each a child of the request
    that wrote it (its ``traceparent``). Nothing at all when not exporting."""
    if not exporting():
        yield
        return
    spans = [
        _tracer().start_span(
            f"publish {stream}",
            context=_extract(event.get(TRACEPARENT)),
            kind=SpanKind.PRODUCER,
            attributes=_messaging(stream, event),
        )
        for event in events
        if isinstance(event, Mapping)  # not an envelope: the relay dead-letters it
    ]
    try:
        yield
    except Exception as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        for span in spans:
            span.end()


@contextmanager
def consuming(stream: str, group: str, events: Sequence[Any]) -> Iterator[None]:
    """The span of handling ``events`` (envelopes handled in one call), current meanwhile:
    a child of the first one's ``traceparent``, linked to the others', so the handling
    joins the trace of the request that caused the event and log lines carry its id."""
    parent, *others = (_extract(getattr(event, TRACEPARENT, None)) for event in events)
    links = [
        Link(span_context)
        for span_context in (trace.get_current_span(c).get_span_context() for c in others)
        if span_context.is_valid
    ]
    first = events[0]
    attributes = _messaging(stream, {"event_id": first.event_id, "type": first.type})
    attributes["messaging.consumer.group.name"] = group
    attributes["messaging.batch.message_count"] = len(events)
    with _tracer().start_as_current_span(
        f"process {stream}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
    ):
        yield
