"""Consume domain events from a Redis stream through a consumer group.

Delivery is **at least once, never exactly once**: an entry is acknowledged (XACK)
only after its handler returned, i.e. after the handler committed its work. A crash
between the commit and the XACK, a handler that fails and is retried, or a consumer
that is presumed dead while it is only slow all deliver the same event again.
**Handlers must therefore be idempotent**: applying an event twice must change nothing
(record applied ``event_id``s in the same write as the projection change, or compare
the payload's ``version``, or make the projection a pure function of stored facts).

One cycle (:meth:`StreamConsumer.process_once`):

1. reclaim: XAUTOCLAIM the group's entries pending for at least ``claim_idle_ms``
   (left by a consumer that died, or by a handler failure here) and take their
   delivery counts from XPENDING;
2. read new entries with XREADGROUP ``>`` (blocking up to ``block_ms`` only when
   nothing was reclaimed);
3. handle the reclaimed entries one by one, then the new ones: each user's events in
   stream order, different users' concurrently (with a ``batch_handler``, each user's
   events of the batch in one call). The entries whose handlers returned are acked
   together at the end of the step, in one XACK, after ``applied`` (if given) was told
   their events. A handler exception leaves the entry pending;
   the next reclaim after ``claim_idle_ms`` delivers it again, so a failed entry may
   be handled after later ones: handlers must not rely on order across failures (the
   payloads carry a ``version`` for that). When a batch handler fails, that user's
   entries are handled again one by one, so each is acked or fails on its own.

An entry goes to the dead-letter stream (``<stream>.dead`` unless told otherwise),
with the error, the original entry id and its original fields, and is then acked:

- at once when it is not a valid event (:class:`~momentum_libs.events.UnknownEventError`
  from parsing, or raised by the handler for a version it does not know);
- when its handler fails on the ``max_deliveries``-th delivery; a failure because a
  store is unreachable (``store_unreachable``, by default :func:`mongodb_unreachable`)
  does not count as a delivery: an outage of any length delays events, never
  dead-letters them. A handler that merely times out on a reachable store counts;
- without calling the handler when it has been delivered more than ``max_deliveries``
  times (attempts that never finished, e.g. a handler that kills the process).

Consumer names are unique per process, so a group would collect the names of every
process that ever ran: a consumer removes its own name when it stops, and every
``forget_idle_ms`` it removes names idle that long (processes that died). A name is
only ever removed, atomically, when nothing is pending on it, so no entry is lost; a
live consumer removed while idle is created again by its next read.

The group is created at id ``0``, not ``$``: a consumer that starts after events were
written still sees them. :meth:`StreamConsumer.run` loops forever and survives Redis
outages (a restarted, empty Redis included: the group is created again).

Entries trimmed before the group read them (the stream's hard cap, an operator's
XTRIM) are found, not silently skipped (:meth:`StreamConsumer.check_trimmed`, every
``trim_check_ms`` and at start): the windows the relay's retention recorded
(:mod:`momentum_libs.retention`), pending entries older than the stream's first entry
(acked once recorded), those XAUTOCLAIM returns as deleted (Redis 7 drops a pending
entry gone from the stream at any XAUTOCLAIM, however recently delivered), and on
Redis 7 a group positioned before the first entry whose entries-read says entries came
in between (XINFO's entries-added minus entries-read exceeds the length; Redis 6.2 has
no entries-read: the other two apply).
Each window is logged loudly, counted (``momentum_stream_trimmed_unread_total``) and
handed to the service's ``repair`` (analytics rebuilds its users from tracking's data),
and forgotten once repaired; kept (so repaired again at the next check, or after a
restart) if the repair fails or the process stops. One replica of the group repairs at
a time (a lease beside the stream, renewed while it runs); the consumer, and every other
replica of its group, reads nothing more while it repairs: run beside the live
consumer, analytics' rebuild lost a race now and then (the streak of a user whose month
the consumer wrote meanwhile came out short; found by tests/test_trim_repair_e2e.py,
about one run in three), so the remaining events are
applied after the rebuild, in stream order.

A consumer of the log's one stream (``whole_log``: P = 1) checks with the trimmed windows
that the log's recorded P is 1 (:func:`momentum_libs.partitions.check_partitions`): with
relays on another P it would idle unseen, their events in partitions it never reads; so it
reads nothing, logs ``consumer_partitions_mismatch`` and checks again, backing off.

The Redis client's ``socket_timeout`` must exceed ``block_ms``.
"""

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from pymongo.errors import ConnectionFailure, NetworkTimeout
from redis.exceptions import RedisError, ResponseError

from momentum_libs.background import (
    FIRST_PAUSE_S,
    LONGEST_PAUSE_S,
    next_pause,
    stop_if_cancelling,
)
from momentum_libs.events import (
    DEAD_CONSUMER,
    DEAD_DELIVERIES,
    DEAD_ENTRY_ID,
    DEAD_ERROR,
    DEAD_GROUP,
    DEAD_STREAM,
    Envelope,
    UnknownEventError,
)
from momentum_libs.metrics import ConsumerMetrics
from momentum_libs.partitions import PartitionCountMismatchError, check_partitions
from momentum_libs.redis_client import RedisClient
from momentum_libs.retention import before, entry_key, text, trimmed_unread_key
from momentum_libs.settings import StreamConsumerSettings
from momentum_libs.stream_keys import beside
from momentum_libs.tracing import consuming

log = structlog.get_logger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]
BatchHandler = Callable[[list[Envelope]], Awaitable[None]]
"""Events of one user in stream order; must do what the handler would do on each in turn."""
Applied = Callable[[list[Envelope]], Awaitable[None]]
"""Told, once per step and before their XACK, every event its handlers applied (of every
user the step read): a service's bookkeeping of what is applied, in one round trip per
step rather than one per user. If it fails the entries stay pending, and are delivered
again."""
Repair = Callable[[list[str]], Awaitable[None]]
"""Makes good what the group lost in the trimmed windows (``"<group> <from> <to>"``);
returns once it has."""


@dataclass
class _Done:
    """The entries of one step whose handlers returned: acked together when it ends."""

    entry_ids: list[Any] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)

    def add(self, entry_id: Any, envelope: Envelope) -> None:
        self.entry_ids.append(entry_id)
        self.envelopes.append(envelope)


# A repair's lease lives this long unless renewed (every third of it, while it runs).
_REPAIR_LEASE_MS = 30_000

# Release a lease only if this consumer still holds it (it may have lapsed and been taken).
RELEASE_IF_MINE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Remove a consumer from the group only if nothing is pending on it, in one step: an
# entry delivered to it in between would otherwise become unclaimable.
_FORGET_IF_IDLE_SCRIPT = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
    return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) + 1
end
return 0
"""


def mongodb_unreachable(exc: BaseException) -> bool:
    """MongoDB could not be reached (no server selectable, connection refused or lost).

    Not a ``NetworkTimeout``: that is also what a slow operation on a healthy server
    raises, and such a handler must still end in the dead letters. A hung server shows
    as unreachable too, once the driver's monitor has marked it down."""
    return isinstance(exc, ConnectionFailure) and not isinstance(exc, NetworkTimeout)


def default_consumer_name(prefix: str) -> str:
    """A consumer name unique to this process (in Kubernetes the hostname is the pod name)."""
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class StreamConsumer:
    """One consumer of a consumer group; see the module docstring for the guarantees."""

    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        group: str,
        consumer_name: str,
        handler: Handler,
        *,
        batch_size: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        dead_letter_stream: str | None = None,
        batch_handler: BatchHandler | None = None,
        concurrency: int = 8,
        store_unreachable: Callable[[BaseException], bool] = mongodb_unreachable,
        forget_idle_ms: int = 3_600_000,
        repair: Repair | None = None,
        trim_check_ms: int = 10_000,
        whole_log: bool = False,
        applied: Applied | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._redis = redis
        self.stream = stream
        self.group = group
        self.consumer_name = consumer_name
        self._handler = handler
        self._batch_handler = batch_handler
        self._applied = applied
        self._store_unreachable = store_unreachable
        # Bounds the store connections and memory a batch of many users' events takes.
        self._gate = asyncio.Semaphore(concurrency)
        self._batch_size = batch_size
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._max_deliveries = max_deliveries
        self.dead_letter_stream = dead_letter_stream or f"{stream}.dead"
        # XAUTOCLAIM is a cursor over the pending entries list; "0-0" starts over.
        self._claim_cursor: Any = "0-0"
        self._forget_idle_ms = forget_idle_ms
        self._next_forget_at = 0.0
        self._forget_if_idle = redis.register_script(_FORGET_IF_IDLE_SCRIPT)
        self._release = redis.register_script(RELEASE_IF_MINE_SCRIPT)
        self._repair = repair
        self._trim_check_ms = trim_check_ms
        self._next_trim_check_at = 0.0
        self._trimmed_unread = trimmed_unread_key(stream)
        # The one stream of an unpartitioned log: the log's recorded P must be 1, or the
        # relays publish into partitions this consumer never reads (it would idle, silent).
        self._whole_log = whole_log
        self.metrics = ConsumerMetrics(redis, stream, group, self.dead_letter_stream)

    @classmethod
    def from_settings(
        cls,
        settings: StreamConsumerSettings,
        redis: RedisClient,
        handler: Handler,
        batch_handler: BatchHandler | None = None,
        stream: str | None = None,
        repair: Repair | None = None,
        *,
        dead_letter_stream: str | None = None,
        consumer_name: str | None = None,
        whole_log: bool = False,
        applied: Applied | None = None,
    ) -> "StreamConsumer":
        """This process's consumer, as the service's settings describe it; ``stream``: read
        another stream than the events (the group's replay stream, a partition) with the
        same group; ``dead_letter_stream``, ``consumer_name``: other than the settings'.
        ``whole_log``: it reads the log's one stream (P = 1), and checks the log's P."""
        return cls(
            redis,
            stream or settings.events_stream,
            settings.consumer_group,
            consumer_name or default_consumer_name(settings.consumer_name_prefix),
            handler,
            batch_size=settings.consumer_batch_size,
            block_ms=settings.consumer_block_ms,
            claim_idle_ms=settings.consumer_claim_idle_ms,
            max_deliveries=settings.consumer_max_deliveries,
            dead_letter_stream=dead_letter_stream or settings.dead_letters,
            batch_handler=batch_handler,
            concurrency=settings.consumer_concurrency,
            repair=repair,
            whole_log=whole_log,
            applied=applied,
        )

    async def ensure_group(self) -> None:
        """Create the group at id 0 (creating the stream too); an existing group is fine."""
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def process_once(self) -> int:
        """Reclaim idle pending entries, read new ones, handle them; returns entries handled.

        "Handled" counts every entry taken off the pending list: acked after its handler,
        or dead-lettered. Redis errors propagate (the entry stays pending).
        """
        handled = 0
        now = asyncio.get_running_loop().time()
        if now >= self._next_forget_at:
            self._next_forget_at = now + self._forget_idle_ms / 1000
            await self.forget_dead_consumers()
        if now >= self._next_trim_check_at:
            if self._whole_log:  # raises until the log's P is 1: nothing is read meanwhile
                await check_partitions(self._redis, self.stream, 1, publishing=False)
            self._next_trim_check_at = now + self._trim_check_ms / 1000
            await self.check_trimmed()
        reclaimed = await self._reclaim()
        handled += await self._handle_reclaimed(reclaimed)
        block = None if reclaimed or self._block_ms <= 0 else self._block_ms
        response: Any = await self._redis.xreadgroup(
            self.group,
            self.consumer_name,
            {self.stream: ">"},
            count=self._batch_size,
            block=block,
        )
        if isinstance(response, Mapping):  # RESP3 answers {stream: [entries]}
            response = [(name, entries[0]) for name, entries in response.items()]
        for _stream, entries in response or []:
            handled += await self._handle_new(entries)
        return handled

    async def take_over(self) -> int:
        """Handle, in stream order, every entry pending on the group, whatever its idle
        time; returns the entries handled.

        For a stream handed to this consumer alone (a partition,
        :mod:`momentum_libs.partitioned`): what is pending there is the previous owner's
        unfinished work, and must be done before anything newer of the same users is read
        (waiting ``claim_idle_ms`` to reclaim it would apply it after them)."""
        handled = 0
        self._claim_cursor = "0-0"
        while True:
            handled += await self._handle_reclaimed(await self._reclaim(min_idle_ms=0))
            if text(self._claim_cursor) == "0-0":  # the pending list is scanned to its end
                return handled

    async def run(self) -> None:
        """Consume until cancelled; Redis outages are logged and retried with backoff.

        On the way out it removes its own name from the group if nothing is pending on it."""
        try:
            await self._consume()
        finally:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1):
                    await self._forget(self.consumer_name)

    async def _consume(self) -> None:
        backoff = FIRST_PAUSE_S
        group_ready = False
        while True:
            stop_if_cancelling()
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                await self.process_once()
                backoff = FIRST_PAUSE_S
            except PartitionCountMismatchError as exc:
                log.error("consumer_partitions_mismatch", group=self.group, error=str(exc))
                await asyncio.sleep(backoff)
                backoff = next_pause(backoff, LONGEST_PAUSE_S)
            except (RedisError, OSError) as exc:
                # Also covers NOGROUP after Redis came back empty: create the group again.
                group_ready = False
                log.warning(
                    "consumer_redis_error",
                    stream=self.stream,
                    group=self.group,
                    error=str(exc),
                    retry_in_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = next_pause(backoff, LONGEST_PAUSE_S)
            except Exception:
                log.exception(
                    "consumer_error", stream=self.stream, group=self.group, retry_in_s=backoff
                )
                await asyncio.sleep(backoff)
                backoff = next_pause(backoff, LONGEST_PAUSE_S)

    async def forget_dead_consumers(self) -> list[str]:
        """Remove the group's other consumers idle for ``forget_idle_ms`` with nothing pending."""
        consumers: Any = await self._redis.xinfo_consumers(self.stream, self.group)
        idle = [
            text(c["name"])
            for c in consumers
            if int(c["pending"]) == 0
            and int(c["idle"]) >= self._forget_idle_ms
            and text(c["name"]) != self.consumer_name
        ]
        forgotten = [name for name in idle if await self._forget(name)]
        if forgotten:
            log.info("stream_consumers_forgotten", group=self.group, consumers=forgotten)
        return forgotten

    async def _forget(self, name: str) -> bool:
        removed = await self._forget_if_idle(keys=[self.stream], args=[self.group, name])
        return bool(removed)

    async def check_trimmed(self) -> list[str]:
        """Find the windows trimmed before this group read them, record them and repair
        them (before reading on); returns the windows recorded for the group."""
        windows = await self._recorded_windows()
        if await self._detect_trimmed({window.split(" ")[2] for window in windows}):
            windows = await self._recorded_windows()
        if windows:
            await self._repair_windows(windows)
        return windows

    async def _recorded_windows(self) -> list[str]:
        fields = await self._redis.hkeys(self._trimmed_unread)
        return sorted(w for w in map(text, fields) if w.split(" ")[0] == self.group)

    async def _detect_trimmed(self, known_ends: set[str]) -> bool:
        """Record what XINFO and XPENDING show was trimmed unread (see the module doc),
        unless a window ending at the same first entry is recorded; True: recorded one."""
        first: Any = await self._redis.xrange(self.stream, count=1)
        first_id = text(first[0][0]) if first else "+"
        pending: Any = await self._redis.xpending(self.stream, self.group)
        oldest = text(pending["min"]) if pending["pending"] else None
        if oldest is not None and (first_id == "+" or before(oldest, first_id)):
            recorded = first_id not in known_ends  # else the loss is recorded already
            if recorded:
                await self._record_trimmed(oldest, first_id)
            await self._ack_pending_before(first_id)
            return recorded
        if first_id in known_ends:
            return False  # the loss up to this first entry is recorded already
        groups: Any = await self._redis.xinfo_groups(self.stream)
        mine = next((g for g in groups if text(g["name"]) == self.group), None)
        if mine is None or mine.get("entries-read") is None:
            return False  # not created yet, or Redis 6.2 (or a group whose count Redis lost)
        last = text(mine["last-delivered-id"])
        if first_id != "+" and not before(last, first_id):
            return False  # what it has not read is all still there
        info: Any = await self._redis.xinfo_stream(self.stream)
        lost = int(info["entries-added"]) - int(mine["entries-read"]) - int(info["length"])
        if lost <= 0:
            return False
        await self._record_trimmed(f"({last}", first_id)
        return True

    async def _ack_pending_before(self, first_kept: str) -> None:
        """Ack the pending entries gone from the stream (recorded first: nothing is lost).
        Redis 6.2 would keep them pending for ever, found again by every check; Redis 7
        drops them at its next XAUTOCLAIM, which would record them a second time."""
        end = "+" if first_kept == "+" else f"({first_kept}"
        while gone := await self._redis.xpending_range(
            self.stream, self.group, min="-", max=end, count=self._batch_size
        ):
            await self._redis.xack(self.stream, self.group, *(p["message_id"] for p in gone))

    async def _record_trimmed(self, first_lost: str, first_kept: str) -> None:
        await self._redis.hset(self._trimmed_unread, f"{self.group} {first_lost} {first_kept}", 1)

    async def _repair_windows(self, windows: list[str]) -> None:
        """Repair under the group's lease: one replica repairs, the others read nothing
        until it is done (reading on would race its rebuild)."""
        lease = beside(self.stream, f".repairing.{self.group}")
        if not await self._redis.set(lease, self.consumer_name, nx=True, px=_REPAIR_LEASE_MS):
            await self._await_other_repair(lease, windows)
            return
        holding = asyncio.create_task(self._hold(lease))
        try:
            await self._repair_now(windows)
        finally:
            holding.cancel()
            await self._release(keys=[lease], args=[self.consumer_name])

    async def _hold(self, lease: str) -> None:
        """Keep the lease while the repair runs (a rebuild may take hours)."""
        while True:
            await asyncio.sleep(_REPAIR_LEASE_MS / 3000)
            await self._redis.pexpire(lease, _REPAIR_LEASE_MS)

    async def _await_other_repair(self, lease: str, windows: list[str]) -> None:
        """Wait while another replica holds the lease and these windows are recorded;
        then check again at once (its repair may have failed: this one takes over)."""
        while await self._redis.exists(lease):
            if not set(windows) & set(await self._recorded_windows()):
                break
            await asyncio.sleep(1)  # polled: the other replica is another process
        self._next_trim_check_at = 0.0

    async def _repair_now(self, windows: list[str]) -> None:
        self.metrics.trimmed_unread(len(windows))
        log.error(  # loudly: events the group had not read are gone from the stream
            "events_trimmed_unread",
            stream=self.stream,
            group=self.group,
            windows=windows,
            repair="starting" if self._repair else "none for this group: not repaired",
        )
        try:
            if self._repair is not None:
                await self._repair(windows)
            await self._redis.hdel(self._trimmed_unread, *windows)
        except Exception:
            log.exception("events_trimmed_unread_repair_failed", group=self.group)
            self._next_trim_check_at = 0.0  # still recorded: the next cycle tries again
            return
        if self._repair is not None:
            log.warning("events_trimmed_unread_repaired", group=self.group, windows=windows)

    async def _reclaim(self, min_idle_ms: int | None = None) -> list[tuple[Any, Any, int]]:
        """Claim entries idle long enough (``claim_idle_ms`` unless told), with how many
        times each has been delivered."""
        reply = await self._redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer_name,
            min_idle_time=self._claim_idle_ms if min_idle_ms is None else min_idle_ms,
            start_id=self._claim_cursor,
            count=self._batch_size,
        )
        self._claim_cursor = reply[0]
        # Entries trimmed from the stream while pending: Redis 7 drops them from the
        # pending list (idle or not) and names them apart, recorded here; Redis 6.2
        # answers a nil for each, with no id, and keeps them pending: the check, at once,
        # finds those older than the first entry (XPENDING), records and acks them.
        deleted = sorted((text(e) for e in reply[2]), key=entry_key) if len(reply) > 2 else []
        if deleted:
            await self._record_trimmed(deleted[0], deleted[-1])
        if deleted or any(entry_id is None for entry_id, _ in reply[1]):
            self._next_trim_check_at = 0.0
        present = [(entry_id, fields) for entry_id, fields in reply[1] if entry_id is not None]
        if not present:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in present:
                pipe.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
            pending = await pipe.execute()
        result: list[tuple[Any, Any, int]] = []
        for (entry_id, fields), info in zip(present, pending, strict=True):
            if not info:
                continue  # acked meanwhile by whoever still held it: nothing left to do
            result.append((entry_id, fields, int(info[0]["times_delivered"])))
        return result

    async def _handle_reclaimed(self, reclaimed: list[tuple[Any, Any, int]]) -> int:
        """Entries delivered before: one by one, in stream order."""
        done = _Done()
        handled = 0
        for entry_id, fields, deliveries in reclaimed:
            handled += await self._handle(entry_id, fields, deliveries, done)
        await self._ack(done)
        return handled

    async def _ack(self, done: _Done) -> None:
        if not done.entry_ids:
            return
        if self._applied is not None:
            await self._applied(done.envelopes)
        await self._redis.xack(self.stream, self.group, *done.entry_ids)
        self.metrics.acked(done.envelopes)

    async def _handle_new(self, entries: list[tuple[Any, Any]]) -> int:
        """First deliveries: per user in stream order, users concurrently."""
        by_user: dict[str, list[tuple[Any, Any, Envelope]]] = {}
        unreadable: list[tuple[Any, Any]] = []
        for entry_id, fields in entries:
            try:
                envelope = Envelope.from_stream_fields(dict(fields))
            except Exception:  # _handle dead-letters it with the parse error
                unreadable.append((entry_id, fields))
                continue
            by_user.setdefault(envelope.user_id, []).append((entry_id, fields, envelope))
        done = _Done()
        handled = 0
        for entry_id, fields in unreadable:
            handled += await self._handle(entry_id, fields, 1, done)
        results = await asyncio.gather(
            *(self._handle_user(items, done) for items in by_user.values()),
            return_exceptions=True,
        )
        await self._ack(done)
        for result in results:  # every user's work is finished before a failure propagates
            if isinstance(result, BaseException):
                raise result
        return handled + sum(r for r in results if isinstance(r, int))

    async def _handle_user(self, items: list[tuple[Any, Any, Envelope]], done: _Done) -> int:
        async with self._gate:
            return await self._handle_user_now(items, done)

    async def _handle_user_now(self, items: list[tuple[Any, Any, Envelope]], done: _Done) -> int:
        if self._batch_handler is not None and len(items) > 1:
            try:
                envelopes = [envelope for _, _, envelope in items]
                with consuming(self.stream, self.group, envelopes), self.metrics.timing():
                    await self._batch_handler(envelopes)
            except Exception as exc:
                if self._store_unreachable(exc):  # one by one would only wait out each
                    self.metrics.failed(len(items))
                    ids = [entry_id for entry_id, _, _ in items]
                    await self._uncount(ids, dict.fromkeys(ids, 1), f"{type(exc).__name__}: {exc}")
                    return 0
                log.info("event_batch_failed_one_by_one", events=len(items), error=str(exc))
            else:
                for entry_id, _, envelope in items:
                    done.add(entry_id, envelope)
                return len(items)
        handled = 0
        for entry_id, fields, envelope in items:
            handled += await self._handle(entry_id, fields, 1, done, envelope)
        return handled

    async def _handle(
        self,
        entry_id: Any,
        fields: Mapping[Any, Any],
        deliveries: int,
        done: _Done,
        envelope: Envelope | None = None,
    ) -> int:
        """Handle one entry, into ``done`` if its handler returns; ``envelope``: its
        fields already parsed."""
        if deliveries > self._max_deliveries:
            await self._dead_letter(
                entry_id,
                fields,
                deliveries,
                f"delivered {deliveries} times without completing (max {self._max_deliveries})",
            )
            return 1
        try:
            envelope = envelope or Envelope.from_stream_fields(dict(fields))
            with consuming(self.stream, self.group, [envelope]), self.metrics.timing():
                await self._handler(envelope)
        except UnknownEventError as exc:
            await self._dead_letter(entry_id, fields, deliveries, f"UnknownEventError: {exc}")
            return 1
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if self._store_unreachable(exc):
                self.metrics.failed()
                await self._uncount([entry_id], {entry_id: deliveries}, error)
                return 0
            if deliveries >= self._max_deliveries:
                await self._dead_letter(entry_id, fields, deliveries, error)
                return 1
            self.metrics.failed()
            log.warning(
                "event_handler_failed",
                stream=self.stream,
                group=self.group,
                entry_id=text(entry_id),
                deliveries=deliveries,
                error=error,
                exc_info=True,
            )
            return 0
        done.add(entry_id, envelope)
        return 1

    async def _uncount(self, entry_ids: list[Any], deliveries: dict[Any, int], error: str) -> None:
        """Take this delivery back off each entry's count (XCLAIM … RETRYCOUNT to ourselves).

        The claim also restarts the entries' idle time: they are delivered again after
        ``claim_idle_ms``, the back-off while the store is unreachable."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xclaim(
                    self.stream,
                    self.group,
                    self.consumer_name,
                    0,
                    [entry_id],
                    retrycount=deliveries[entry_id] - 1,
                    justid=True,
                )
            await pipe.execute()
        log.warning(
            "event_handler_store_unreachable",
            stream=self.stream,
            group=self.group,
            entries=[text(e) for e in entry_ids],
            error=error,
            retry_in_ms=self._claim_idle_ms,
        )

    async def _dead_letter(
        self, entry_id: Any, fields: Mapping[Any, Any], deliveries: int, error: str
    ) -> None:
        dead: dict[Any, Any] = dict(fields)
        dead.update(
            {
                DEAD_ERROR: error[:2000],
                DEAD_ENTRY_ID: text(entry_id),
                DEAD_STREAM: self.stream,
                DEAD_GROUP: self.group,
                DEAD_CONSUMER: self.consumer_name,
                DEAD_DELIVERIES: str(deliveries),
            }
        )
        # One MULTI: the entry is either dead-lettered and acked, or still pending.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter_stream, dead)
            pipe.xack(self.stream, self.group, entry_id)
            await pipe.execute()
        self.metrics.dead_lettered()
        log.error(
            "event_dead_lettered",
            stream=self.stream,
            group=self.group,
            entry_id=text(entry_id),
            deliveries=deliveries,
            dead_letter_stream=self.dead_letter_stream,
            error=error,
        )
