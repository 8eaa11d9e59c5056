"""The outbox relay: publishes the events that writes left in documents' outboxes.

See :mod:`momentum_libs.outbox` for how a change and its event are written together.
The relay finds pending documents by their indexed ``outbox_pending`` flag, XADDs their
events to the stream and clears them off the documents with a guarded write (bumping
``version``, so a writer racing it retries with the cleared array instead of re-adding
what is published).

Each event is published once, however many replicas run a relay: every relay sweeps
everyone's pending documents (a crashed replica's leftovers included), and the XADD is
made idempotent inside Redis. One Lua script per pass XADDs each event only if its
claim key (``<stream>.published.<event_id>``, in the stream's slot) is absent, and sets
that key with a TTL (``claim_ttl_s``) far longer than any retry, all in one step: two
relays that read the same pending event, or one whose clear failed after the XADD,
publish it once. Only an event still pending after its claim expired (a MongoDB outage
longer than the TTL between XADD and clear) can be published twice: consumers remain
idempotent by ``event_id``.

An outbox entry that is not a valid envelope (written by hand, or by a bug) would block
every pass that finds its document: the relay moves it to ``<stream>.dead.outbox`` with
the validation error instead (apart from the valid events' script, so it can neither
fail nor repeat them), and clears it like a published one. A tombstone's
document is removed once its last event is out.

On a partitioned log (``partitions`` > 1, :mod:`momentum_libs.partitions`) each event goes
to its user's partition, in the order of the pass, through the same script run on that
partition's slot (its claim keys are beside it); each partition is trimmed on its own. The
relay first checks that the log has its P, and publishes nothing while it does not.
"""

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from pydantic import ValidationError
from pymongo import DeleteOne, UpdateOne
from pymongo.read_concern import ReadConcern
from redis.exceptions import RedisError

from momentum_libs.background import FIRST_PAUSE_S, next_pause, stop_if_cancelling
from momentum_libs.events import DEAD_ERROR, STREAM_FIELD, Envelope
from momentum_libs.metrics import OutboxMetrics
from momentum_libs.outbox import OutboxDocument
from momentum_libs.partitions import check_partitions, partition_of, partition_streams
from momentum_libs.redis_client import RedisClient
from momentum_libs.retention import PartitionedRetention, StreamRetention
from momentum_libs.settings import OutboxRelaySettings
from momentum_libs.stream_keys import beside
from momentum_libs.tracing import publishing

log = structlog.get_logger(__name__)

MAJORITY = ReadConcern("majority")

# How often a relay reads the log's recorded partition count (one GET): the longest it
# may publish after an operator started a drain.
_PARTITIONS_CHECK_S = 1.0

# KEYS[1]: the stream; KEYS[2..]: each event's claim key (the stream's slot).
# ARGV[1]: the claims' TTL (ms); ARGV[2]: the entry's field name; ARGV[1 + i]: the
# (i)th event (KEYS[i]'s). Returns 1 per event published, 0 per event
# already published. The claim is checked and set around the XADD in one script: never
# a claim without its entry (a failing XADD sets none), never an entry twice.
_PUBLISH_ONCE_SCRIPT = """
local published = {}
for i = 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 0 then
        redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[1 + i])
        redis.call('SET', KEYS[i], '1', 'PX', ARGV[1])
        published[i - 1] = 1
    else
        published[i - 1] = 0
    end
end
return published
"""


def _guard(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The filter of a clear of ``doc`` as read: its id, its shard key (``user_id``, where
    the collection has one: one shard is asked) and the version read."""
    owner = {"user_id": doc["user_id"]} if "user_id" in doc else {}
    return {"_id": doc["_id"], **owner, "version": doc["version"]}


def _entry_key(entry: Any) -> str:
    """An outbox entry's identity: its event id, or the whole entry for an invalid one."""
    if isinstance(entry, Mapping) and isinstance(entry.get("event_id"), str):
        return str(entry["event_id"])
    return json.dumps(entry, default=str, sort_keys=True)


class OutboxRelay:
    """Publishes pending outbox events of the given document classes to one stream.

    Run :meth:`run` as a background task; call :meth:`notify` after a write to publish
    at once instead of at the next sweep. ``retention``: the stream's trimming, done
    after passes (one replica per interval: :mod:`momentum_libs.retention`).
    """

    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        models: Sequence[type[OutboxDocument]],
        *,
        retention: StreamRetention | PartitionedRetention | None = None,
        sweep_interval_s: float = 1.0,
        batch_size: int = 500,
        max_backoff_s: float = 5.0,
        claim_ttl_s: float = 600.0,
        partitions: int = 1,
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._partitions = partition_streams(stream, partitions)
        self._next_partitions_check_at = 0.0
        self.dead_letter_stream = f"{stream}.dead.outbox"
        self._models = list(models)
        self.retention = retention
        self._sweep_interval_s = sweep_interval_s
        self._batch_size = batch_size
        self._max_backoff_s = max_backoff_s
        self._claim_ttl_ms = int(claim_ttl_s * 1000)
        self._publish_once = redis.register_script(_PUBLISH_ONCE_SCRIPT)
        self._wakeup = asyncio.Event()
        self._written: set[type[OutboxDocument]] = set()
        self.metrics = OutboxMetrics(self._models)

    @classmethod
    def from_settings(
        cls,
        settings: OutboxRelaySettings,
        redis: RedisClient,
        models: Sequence[type[OutboxDocument]],
    ) -> "OutboxRelay":
        retentions = [
            StreamRetention(
                redis,
                stream,
                retention_s=settings.events_retention_s,
                hard_maxlen=settings.events_maxlen,
                interval_s=settings.events_retention_interval_s,
            )
            for stream in partition_streams(settings.events_stream, settings.events_partitions)
        ]
        return cls(
            redis,
            settings.events_stream,
            models,
            retention=retentions[0] if len(retentions) == 1 else PartitionedRetention(retentions),
            sweep_interval_s=settings.relay_sweep_interval_s,
            batch_size=settings.relay_batch_size,
            max_backoff_s=settings.relay_max_backoff_s,
            claim_ttl_s=settings.relay_claim_ttl_s,
            partitions=settings.events_partitions,
        )

    def notify(self, model: type[OutboxDocument] | None = None) -> None:
        """A write of ``model`` (None: of any class) left an event: publish it now.

        A pass woken so reads only the classes written since the last pass (a write of
        logs costs no read of goals, targets, ...); a sweep, at least every
        ``sweep_interval_s`` however busy the relay is, reads them all, and so finds what
        no notify told of (a crashed replica's leftovers)."""
        self._written.update(self._models if model is None else [model])
        self._wakeup.set()

    async def run(self) -> None:
        backoff = FIRST_PAUSE_S
        loop = asyncio.get_running_loop()
        next_sweep_at = loop.time()
        while True:
            stop_if_cancelling()
            self._wakeup.clear()
            sweep = loop.time() >= next_sweep_at
            models = [m for m in self._models if sweep or m in self._written]
            self._written.clear()
            try:
                while await self.drain_once(models) >= self._batch_size:
                    pass  # more were waiting: keep going before sleeping
                if self.retention is not None:
                    await self.retention.maybe_trim()
                backoff = FIRST_PAUSE_S
                if sweep:
                    next_sweep_at = loop.time() + self._sweep_interval_s
                wait = max(next_sweep_at - loop.time(), 0.0)
            except (RedisError, OSError) as exc:
                self._written.update(models)  # the pass after the pause reads them again
                self.metrics.failed(exc)
                log.warning("outbox_publish_failed", error=str(exc), retry_in_s=backoff)
                wait, backoff = backoff, next_pause(backoff, self._max_backoff_s)
            except Exception as exc:
                # MongoDB down or anything unexpected: retry, never die.
                self._written.update(models)
                self.metrics.failed(exc)
                log.exception("outbox_relay_error", retry_in_s=backoff)
                wait, backoff = backoff, next_pause(backoff, self._max_backoff_s)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a racing cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    async def drain_once(self, models: Sequence[type[OutboxDocument]] | None = None) -> int:
        """Publish what is pending now (up to a batch per class; of ``models`` only, when
        given); returns events published.

        Raises :class:`~momentum_libs.partitions.PartitionCountMismatchError` (and
        publishes nothing) while the log has another P than this relay."""
        now = asyncio.get_running_loop().time()
        if now >= self._next_partitions_check_at:  # an operator's drain stops it within this
            await check_partitions(
                self._redis, self._stream, len(self._partitions), publishing=True
            )
            self._next_partitions_check_at = now + _PARTITIONS_CHECK_S
        published = 0
        for model in self._models if models is None else models:
            published += await self._drain_model(model)
        return published

    async def _drain_model(self, model: type[OutboxDocument]) -> int:
        # Majority reads: an event is published only once its write cannot be rolled back.
        collection = model.get_pymongo_collection().with_options(read_concern=MAJORITY)
        docs = await collection.find(
            {"outbox_pending": True},
            projection={"outbox": 1, "version": 1, "deleted": 1, "user_id": 1},
            limit=self._batch_size,
        ).to_list()
        if not docs:
            return 0
        entries = [(doc, entry) for doc in docs for entry in doc.get("outbox", [])]
        valid: list[Envelope] = []
        invalid: list[dict[str, str]] = []
        for doc, entry in entries:
            checked = self._checked(doc, entry)
            if isinstance(checked, Envelope):
                valid.append(checked)
            else:
                invalid.append(checked)
        with publishing(self._stream, [entry for _, entry in entries]):
            fresh = await self._publish(valid)
            await self._dead_letter_all(invalid)
        self.metrics.passed(fresh, len(invalid), len(valid) - fresh)
        if not await self._clear_all(collection, docs, keep_tombstones=model.keep_tombstones):
            await self._clear_raced(collection, docs)
        return len(entries)

    def claim_key(self, event_id: str, stream: str | None = None) -> str:
        """The key saying ``event_id`` is in ``stream`` (its partition; unless told, the
        one stream) for ``claim_ttl_s``."""
        return beside(stream or self._stream, f".published.{event_id}")

    def partition_of(self, event: Envelope) -> str:
        """The stream (partition) ``event`` is published to: its user's."""
        return self._partitions[partition_of(event.user_id, len(self._partitions))]

    async def _publish(self, events: list[Envelope]) -> int:
        """XADD each event not published yet, one script per partition (its slot); returns
        how many were new."""
        by_partition: dict[str, list[Envelope]] = {}
        for event in events:  # in the pass's order: a user's events stay in theirs
            by_partition.setdefault(self.partition_of(event), []).append(event)
        fresh = await asyncio.gather(
            *(self._publish_to(stream, batch) for stream, batch in by_partition.items())
        )
        return sum(fresh)

    async def _publish_to(self, stream: str, events: list[Envelope]) -> int:
        keys = [stream, *(self.claim_key(e.event_id, stream) for e in events)]
        args: list[str | int] = [
            self._claim_ttl_ms,
            STREAM_FIELD,
            *(e.to_stream_fields()[STREAM_FIELD] for e in events),
        ]
        flags: Any = await self._publish_once(keys=keys, args=args)
        return sum(int(flag) for flag in flags)

    def _checked(self, doc: Mapping[str, Any], entry: Any) -> Envelope | dict[str, str]:
        """The entry as an event, or (logged) the dead letter of one that is not valid."""
        try:
            return Envelope.model_validate(entry)
        except ValidationError as exc:
            self.metrics.invalid_entry()
            first = exc.errors(include_input=False)[0]
            log.error(  # no input values: an entry may hold a user's text
                "outbox_entry_invalid",
                document=str(doc["_id"]),
                errors=exc.error_count(),
                first_error=f"{'.'.join(map(str, first['loc']))}: {first['msg']}",
                dead_letter_stream=self.dead_letter_stream,
            )
            return {
                DEAD_ERROR: f"not a valid event: {exc}"[:2000],
                "document": str(doc["_id"]),
                "entry": json.dumps(entry, default=str),
            }

    async def _dead_letter_all(self, dead: list[dict[str, str]]) -> None:
        if not dead:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for fields in dead:
                pipe.xadd(self.dead_letter_stream, fields)  # type: ignore[arg-type]
            await pipe.execute()

    @staticmethod
    async def _clear_all(
        collection: Any, docs: list[Mapping[str, Any]], *, keep_tombstones: bool = False
    ) -> bool:
        """Clear every document's outbox in one round trip; False if a write raced any.

        A tombstone changes no more: once published, it goes (unless its model keeps them)."""
        ops: list[Any] = []
        for doc in docs:
            guard = _guard(doc)
            if doc.get("deleted") and not keep_tombstones:
                ops.append(DeleteOne(guard))
            else:
                clear = {"$set": {"outbox": [], "outbox_pending": False}, "$inc": {"version": 1}}
                ops.append(UpdateOne(guard, clear))
        result = await collection.bulk_write(ops, ordered=False)
        return bool(result.matched_count + result.deleted_count == len(ops))

    @staticmethod
    async def _clear_raced(collection: Any, docs: list[Mapping[str, Any]]) -> None:
        """After a bulk clear a writer raced: clear what we published off those documents
        that still hold it, keeping the events the writers added."""
        live = [doc for doc in docs if not doc.get("deleted")]
        published = {doc["_id"]: {_entry_key(e) for e in doc.get("outbox", [])} for doc in live}
        query: dict[str, Any] = {"_id": {"$in": list(published)}, "outbox_pending": True}
        if owners := sorted({doc["user_id"] for doc in live if "user_id" in doc}):
            query["user_id"] = {"$in": owners}  # only the shards holding these documents
        still = collection.find(query, projection={"outbox": 1, "version": 1, "user_id": 1})
        async for current in still:
            await OutboxRelay._mark_published(collection, current, published[current["_id"]])

    @staticmethod
    async def _mark_published(
        collection: Any, current: Mapping[str, Any] | None, published: set[str]
    ) -> None:
        """Clear the ``published`` events off the document, keeping any a racing write added."""
        for _ in range(3):
            if current is None:
                return
            outbox = current.get("outbox", [])
            remaining = [e for e in outbox if _entry_key(e) not in published]
            if len(remaining) == len(outbox):
                return  # nothing of ours is left on it
            result = await collection.update_one(
                _guard(current),
                {
                    "$set": {"outbox": remaining, "outbox_pending": bool(remaining)},
                    "$inc": {"version": 1},
                },
            )
            if result.matched_count:
                return
            # Another write landed meanwhile: keep its new events.
            current = await collection.find_one(
                {key: value for key, value in _guard(current).items() if key != "version"},
                projection={"outbox": 1, "version": 1, "user_id": 1},
            )
        # Still racing: leave it pending; the next pass republishes (consumers dedupe).
