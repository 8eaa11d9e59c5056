"""Prometheus metrics of every process: what they count, and the hooks that count it.

Every series is listed, with its labels, in docs/operations.md. Label sets are bounded:
route templates (never raw paths), a fixed set of methods, outcomes and reasons, consumer
group and collection names, driver command names; never a user id. There is no
``service`` label: Prometheus' ``job`` tells the processes apart.

Cheap on the request path: the HTTP middleware is pure ASGI and keeps one labelled child
per (method, route, status); store timings keep one per command. Gauges that need a
store query (outbox backlog, consumer lag, pending, dead letters) are computed when
``/metrics`` is scraped (:func:`metrics_response`), never per request.

Services serve ``GET /metrics`` on their own port; the gateway serves it on a listener of
its own (:func:`start_metrics_listener`), never on its public port.
"""

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pymongo import monitoring
from pymongo.errors import ConnectionFailure
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from momentum_libs.events import Envelope
    from momentum_libs.redis_client import RedisClient

log = structlog.get_logger(__name__)

# A `_created` series beside every counter and histogram doubles the series for nothing
# our alerts use.
disable_created_metrics()  # type: ignore[no-untyped-call]

_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

HTTP_REQUESTS = Counter(
    "momentum_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "momentum_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response body",
    ["method", "route"],
    buckets=_FAST_BUCKETS,
)
RELAY_PUBLISHED = Counter("momentum_relay_published_total", "Outbox events published")
RELAY_ALREADY_PUBLISHED = Counter(
    "momentum_relay_already_published_total",
    "Outbox events found pending that a relay had published already (not published again)",
)
RELAY_FAILURES = Counter(
    "momentum_relay_failures_total",
    "Relay passes that failed, and outbox entries that were not valid events",
    ["reason"],
)
RELAY_REASONS = ("redis_unavailable", "mongodb_unavailable", "unexpected", "invalid_entry")
RELAY_DEAD_LETTERED = Counter(
    "momentum_relay_dead_lettered_total", "Outbox entries moved to the outbox dead-letter stream"
)
STREAM_CAPPED = Counter(
    "momentum_stream_capped_total",
    "Trims of the event stream by its hard length cap (memory), not by retention",
)
STREAM_TRIMMED_UNREAD = Counter(
    "momentum_stream_trimmed_unread_total",
    "Windows of entries trimmed before the group read them, found by its consumer "
    "(each then repaired where the group has a repair)",
    ["group"],
)
CONSUMER_DELIVERIES = Counter(
    "momentum_consumer_deliveries_total",
    "Deliveries of events to a consumer group's handler, by outcome",
    ["group", "outcome"],
)
CONSUMER_OUTCOMES = ("acked", "failed", "dead_lettered")
CONSUMER_HANDLE_DURATION = Histogram(
    "momentum_consumer_handle_duration_seconds",
    "Time a handler call took (one event, or one user's events of a batch)",
    ["group"],
    buckets=_FAST_BUCKETS,
)
CONSUMER_EVENT_DELAY = Histogram(
    "momentum_consumer_event_delay_seconds",
    "From an event's occurred_at to its application by the group",
    ["group"],
    buckets=_DELAY_BUCKETS,
)
LOGIN_FAILURES = Counter(
    "momentum_login_failures_total", "Failed logins (and wrong re-entered passwords)"
)
LOGIN_LOCKS = Counter(
    "momentum_login_locks_total", "Locks begun: an email or an address hit its limit", ["scope"]
)
LOGIN_LOCK_SCOPES = ("email", "address")
REVOCATION_CHECK_FAILURES = Counter(
    "momentum_revocation_check_failures_total",
    "Session-revocation checks that could not ask Redis (answered 503)",
)
STORE_DURATION = Histogram(
    "momentum_store_duration_seconds",
    "Round trip of one store command (a Redis pipeline counts as one)",
    ["store", "command"],
    buckets=_FAST_BUCKETS,
)

for _reason in RELAY_REASONS:
    RELAY_FAILURES.labels(_reason)
for _scope in LOGIN_LOCK_SCOPES:
    LOGIN_LOCKS.labels(_scope)


# -- HTTP ----------------------------------------------------------------------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

RouteOf = Callable[[Scope], str | None]
"""The route template of a request the app's router does not see (the gateway's proxy)."""


def _routed(scope: Scope) -> str:
    route = scope.get("route")  # set by Starlette's router on a match
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status.

    Pure ASGI (a BaseHTTPMiddleware would buffer streamed bodies and cost far more). The
    route is read after the app answered: the router has put it in the scope by then."""

    def __init__(self, app: ASGIApp, route_of: RouteOf | None = None) -> None:
        self.app = app
        self._route_of = route_of
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before starting one

        async def send_seeing_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_seeing_status)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"]
        if method not in _METHODS:
            method = "other"
        route = (self._route_of and self._route_of(scope)) or _routed(scope)
        key = (method, route, status)
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = HTTP_REQUESTS.labels(method, route, str(status))
        count.inc()
        duration = self._durations.get(key[:2])
        if duration is None:
            duration = self._durations[key[:2]] = HTTP_DURATION.labels(method, route)
        duration.observe(seconds)


# -- stores --------------------------------------------------------------------------------


class _StoreTimer:
    """One histogram child per command name, made on first use."""

    def __init__(self, store: str) -> None:
        self._store = store
        self._children: dict[Any, Any] = {}

    def observe(self, command: Any, seconds: float) -> None:
        child = self._children.get(command)
        if child is None:
            name = command.decode() if isinstance(command, bytes) else str(command)
            child = self._children[command] = STORE_DURATION.labels(self._store, name.lower())
        child.observe(seconds)


_MONGODB = _StoreTimer("mongodb")
REDIS_COMMANDS = _StoreTimer("redis")
"""Timed by the clients of redis_client.py."""


class MongoCommandTimer(monitoring.CommandListener):
    """PyMongo command monitoring: each command's round trip, by its name."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        _MONGODB.observe(event.command_name, event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        _MONGODB.observe(event.command_name, event.duration_micros / 1e6)


# -- scrape-time gauges ------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Gauges:
    """Gauge families filled at one scrape; several sources share a family's name."""

    def __init__(self) -> None:
        self._families: dict[str, GaugeMetricFamily] = {}

    def add(self, name: str, doc: str, label: tuple[str, str], value: float) -> None:
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = GaugeMetricFamily(name, doc, labels=[label[0]])
        family.add_metric([label[1]], value)

    def collect(self) -> Iterator[Metric]:
        yield from self._families.values()


class ScrapedGauges:
    """What computes gauges from the stores when ``/metrics`` is scraped."""

    async def gauges(self, into: Gauges) -> None:
        raise NotImplementedError


# -- relay, consumers, logins ----------------------------------------------------------------


class OutboxMetrics(ScrapedGauges):
    """The relay's counters, and its collections' backlog computed at scrape time."""

    def __init__(self, models: Sequence[Any]) -> None:
        self._models = list(models)

    @staticmethod
    def failed(exc: BaseException) -> None:
        """Count a failed relay pass by a reason from a fixed set."""
        from redis.exceptions import RedisError  # here: only the relay fails this way

        if isinstance(exc, RedisError | OSError):
            reason = "redis_unavailable"
        elif isinstance(exc, ConnectionFailure):
            reason = "mongodb_unavailable"
        else:
            reason = "unexpected"
        RELAY_FAILURES.labels(reason).inc()

    @staticmethod
    def invalid_entry() -> None:
        RELAY_FAILURES.labels("invalid_entry").inc()

    @staticmethod
    def passed(published: int, dead_lettered: int, already_published: int = 0) -> None:
        """After a pass's XADDs went through: events published, entries dead-lettered,
        events skipped because they were in the stream already."""
        RELAY_PUBLISHED.inc(published)
        RELAY_DEAD_LETTERED.inc(dead_lettered)
        RELAY_ALREADY_PUBLISHED.inc(already_published)

    async def gauges(self, into: Gauges) -> None:
        """Pending documents (by the indexed flag) and the age of the oldest pending event."""
        for model in self._models:
            collection = model.get_pymongo_collection()
            count = await collection.count_documents({"outbox_pending": True})
            age = await self._oldest_age(collection) if count else 0.0
            label = ("collection", collection.name)
            into.add(
                "momentum_outbox_pending_documents",
                "Documents whose outbox holds events not yet published",
                label,
                count,
            )
            into.add(
                "momentum_outbox_oldest_pending_age_seconds",
                "Age of the oldest event not yet published (0: none pending)",
                label,
                age,
            )

    @staticmethod
    async def _oldest_age(collection: Any) -> float:
        # A document's first outbox entry is its oldest: sort by it, take one document.
        oldest = await collection.find_one(
            {"outbox_pending": True}, projection={"outbox": 1}, sort=[("outbox.0.occurred_at", 1)]
        )
        times = [entry.get("occurred_at") for entry in (oldest or {}).get("outbox", [])]
        dated = [t for t in times if isinstance(t, datetime)]
        if not dated:
            return 0.0
        return max(0.0, (datetime.now(UTC) - min(dated)).total_seconds())


LAG_COUNT_CAP = 10_000
"""On Redis 6.2 (no lag in XINFO GROUPS) the lag is counted, up to this many entries."""


class ConsumerMetrics(ScrapedGauges):
    """One consumer group's counters and histograms (children made once), and its lag,
    pending entries and dead letters computed at scrape time."""

    def __init__(self, redis: "RedisClient", stream: str, group: str, dead_letters: str) -> None:
        self._redis = redis
        self._stream = stream
        self._group = group
        self._dead_letters = dead_letters
        self._acked = CONSUMER_DELIVERIES.labels(group, "acked")
        self._failed = CONSUMER_DELIVERIES.labels(group, "failed")
        self._dead = CONSUMER_DELIVERIES.labels(group, "dead_lettered")
        self._handle = CONSUMER_HANDLE_DURATION.labels(group)
        self._delay = CONSUMER_EVENT_DELAY.labels(group)
        self._trimmed = STREAM_TRIMMED_UNREAD.labels(group)

    def timing(self) -> Any:
        """``with metrics.timing(): await handler(...)``."""
        return self._handle.time()

    def acked(self, envelopes: Iterable["Envelope"]) -> None:
        now = datetime.now(UTC)
        for envelope in envelopes:
            self._acked.inc()
            self._delay.observe(max(0.0, (now - envelope.occurred_at).total_seconds()))

    def failed(self, deliveries: int = 1) -> None:
        self._failed.inc(deliveries)

    def dead_lettered(self) -> None:
        self._dead.inc()

    def trimmed_unread(self, windows: int) -> None:
        self._trimmed.inc(windows)

    async def gauges(self, into: Gauges) -> None:
        for name, (doc, value) in (await self.figures()).items():
            into.add(name, doc, ("group", self._group), float(value))

    async def figures(self) -> dict[str, tuple[str, float]]:
        """Each gauge's (help, value) for this stream; none before the group exists."""
        groups: Any = await self._redis.xinfo_groups(self._stream)
        mine = next((g for g in groups if _text(g.get("name")) == self._group), None)
        if mine is None:
            return {}  # not created yet: the consumer creates it on its first cycle
        pending: Any = await self._redis.xpending(self._stream, self._group)
        values: dict[str, tuple[str, float]] = {
            "momentum_consumer_lag_entries": (
                "Stream entries not yet delivered to the group",
                await self.group_lag({_text(k): v for k, v in mine.items()}),
            ),
            "momentum_consumer_pending_entries": (
                "Entries delivered to the group and not yet acknowledged",
                int(pending["pending"]),
            ),
            "momentum_consumer_oldest_pending_age_seconds": (
                "Age (since it entered the stream) of the group's oldest unacknowledged entry",
                await self._oldest_pending_age(pending),
            ),
            "momentum_consumer_dead_letters": (
                "Length of the group's dead-letter stream",
                await self._redis.xlen(self._dead_letters),
            ),
        }
        return values

    async def group_lag(self, info: dict[str, Any]) -> int:
        """Entries not yet delivered to the group, from its XINFO GROUPS entry: ``lag``, else
        computed (entries-added minus entries-read on Redis 7, counted on Redis 6.2)."""
        if info.get("lag") is not None:
            return int(info["lag"])
        if info.get("entries-read") is not None:  # Redis 7 with lag unknown (entries deleted)
            added = (await self._redis.xinfo_stream(self._stream))["entries-added"]
            return max(0, int(added) - int(info["entries-read"]))
        after = f"({_text(info['last-delivered-id'])}"  # Redis 6.2: count them
        entries = await self._redis.xrange(self._stream, min=after, max="+", count=LAG_COUNT_CAP)
        return len(entries or [])

    async def _oldest_pending_age(self, pending: Any) -> float:
        if not pending["pending"]:
            return 0.0
        added_ms = int(_text(pending["min"]).split("-")[0])  # an entry id is its time
        seconds, micros = await self._redis.time()
        return max(0.0, seconds + micros / 1e6 - added_ms / 1000)


class PartitionedConsumerMetrics(ScrapedGauges):
    """A group's gauges over every partition of the log (whoever holds them): lag, pending
    and dead letters summed, the oldest pending age the oldest of all; and how many
    partitions this replica holds."""

    def __init__(self, group: str, partitions: Sequence[ConsumerMetrics]) -> None:
        self._group = group
        self._partitions = list(partitions)
        self.held = 0

    async def gauges(self, into: Gauges) -> None:
        from redis.exceptions import ResponseError  # here: only a consumer's process scrapes it

        totals: dict[str, tuple[str, float]] = {}
        for partition in self._partitions:
            try:
                figures = await partition.figures()
            except ResponseError as exc:
                if "no such key" not in str(exc).lower():
                    raise
                continue  # a partition no replica has read yet: nothing to count there
            for name, (doc, value) in figures.items():
                before = totals.get(name, (doc, 0.0))[1]
                oldest = name == "momentum_consumer_oldest_pending_age_seconds"
                totals[name] = (doc, max(before, value) if oldest else before + value)
        totals["momentum_consumer_partitions_held"] = (
            "Partitions of the event log this replica reads now",
            float(self.held),
        )
        for name, (doc, value) in totals.items():
            into.add(name, doc, ("group", self._group), value)


def login_failed() -> None:
    LOGIN_FAILURES.inc()


def login_locked(scopes: Iterable[str]) -> None:
    for scope in scopes:
        LOGIN_LOCKS.labels(scope).inc()


def revocation_check_failed() -> None:
    REVOCATION_CHECK_FAILURES.inc()


# -- /metrics ----------------------------------------------------------------------------------


def _scraped(state: Any) -> list[ScrapedGauges]:
    """The gauges of what a service's lifespan built (its state): relays and consumers
    each carry theirs as ``.metrics``."""
    if not dataclasses.is_dataclass(state):
        return []
    found = []
    for field in dataclasses.fields(state):
        metrics = getattr(getattr(state, field.name), "metrics", None)
        if isinstance(metrics, ScrapedGauges):
            found.append(metrics)
    return found


async def _scrape(state: Any, timeout_s: float) -> Gauges:
    gauges = Gauges()
    for source in _scraped(state):
        try:
            async with asyncio.timeout(timeout_s):
                await source.gauges(gauges)
        except Exception as exc:  # a store down: these gauges are left out, the rest served
            log.warning("metrics_gauges_unavailable", error=f"{type(exc).__name__}: {exc}")
    return gauges


class _Collected(Collector):
    def __init__(self, gauges: Gauges) -> None:
        self._gauges = gauges

    def collect(self) -> Iterable[Metric]:
        return self._gauges.collect()


async def metrics_response(request: Request) -> Response:
    """``GET /metrics`` of a service: the process's series plus the scrape-time gauges."""
    body = generate_latest(REGISTRY)
    state = getattr(request.app.state, "service", None)
    if state is not None:
        timeout_s = request.app.state.settings.store_timeout_ms / 1000
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collected(await _scrape(state, timeout_s)))
        body += generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# -- the gateway's own listener ------------------------------------------------------------------


class MetricsListener:
    """``/metrics`` on an address of its own (a thread of prometheus_client's)."""

    def __init__(self, host: str, port: int) -> None:
        server, self._thread = start_http_server(port, addr=host)
        self._server: WSGIServer = server
        self.port: int = server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
