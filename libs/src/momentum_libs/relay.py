"""The outbox relay: publishes the events that writes left in documents' outboxes.

See :mod:`momentum_libs.outbox` for how a change and its event are written together.
The relay finds pending documents by their indexed ``outbox_pending`` flag, XADDs their
events to the stream and clears them off the documents with a guarded write (bumping
``version``, so a writer racing it retries with the cleared array instead of re-adding
what is published). A crash between XADD and the clear may publish an event twice:
consumers are idempotent by ``event_id``.

An outbox entry that is not a valid envelope (written by hand, or by a bug) would block
every pass that finds its document: the relay moves it to ``<stream>.dead.outbox`` with
the validation error instead, and clears it like a published one. A tombstone's
document is removed once its last event is out.
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
from redis.asyncio import Redis
from redis.exceptions import RedisError

from momentum_libs.background import FIRST_PAUSE_S, next_pause, stop_if_cancelling
from momentum_libs.events import DEAD_ERROR, Envelope
from momentum_libs.metrics import OutboxMetrics
from momentum_libs.outbox import OutboxDocument
from momentum_libs.settings import OutboxRelaySettings
from momentum_libs.tracing import publishing

log = structlog.get_logger(__name__)

MAJORITY = ReadConcern("majority")


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
    at once instead of at the next sweep.
    """

    def __init__(
        self,
        redis: Redis,
        stream: str,
        models: Sequence[type[OutboxDocument]],
        *,
        maxlen: int = 1_000_000,
        sweep_interval_s: float = 1.0,
        batch_size: int = 500,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._stream = stream
        self.dead_letter_stream = f"{stream}.dead.outbox"
        self._models = list(models)
        self._maxlen = maxlen
        self._sweep_interval_s = sweep_interval_s
        self._batch_size = batch_size
        self._max_backoff_s = max_backoff_s
        self._wakeup = asyncio.Event()
        self.metrics = OutboxMetrics(self._models)

    @classmethod
    def from_settings(
        cls, settings: OutboxRelaySettings, redis: Redis, models: Sequence[type[OutboxDocument]]
    ) -> "OutboxRelay":
        return cls(
            redis,
            settings.events_stream,
            models,
            maxlen=settings.events_maxlen,
            sweep_interval_s=settings.relay_sweep_interval_s,
            batch_size=settings.relay_batch_size,
            max_backoff_s=settings.relay_max_backoff_s,
        )

    def notify(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        backoff = FIRST_PAUSE_S
        while True:
            stop_if_cancelling()
            self._wakeup.clear()
            try:
                while await self.drain_once() >= self._batch_size:
                    pass  # more were waiting: keep going before sleeping
                backoff = FIRST_PAUSE_S
                wait = self._sweep_interval_s
            except (RedisError, OSError) as exc:
                self.metrics.failed(exc)
                log.warning("outbox_publish_failed", error=str(exc), retry_in_s=backoff)
                wait, backoff = backoff, next_pause(backoff, self._max_backoff_s)
            except Exception as exc:
                # MongoDB down or anything unexpected: retry, never die.
                self.metrics.failed(exc)
                log.exception("outbox_relay_error", retry_in_s=backoff)
                wait, backoff = backoff, next_pause(backoff, self._max_backoff_s)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a racing cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    async def drain_once(self) -> int:
        """Publish what is pending now (up to a batch per model); returns events published."""
        published = 0
        for model in self._models:
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
        events = [event for doc in docs for event in doc.get("outbox", [])]
        dead = 0
        with publishing(self._stream, events):
            async with self._redis.pipeline(transaction=False) as pipe:
                for doc in docs:
                    for event in doc.get("outbox", []):
                        if not self._publish(pipe, doc, event):
                            dead += 1
                results = await pipe.execute()
        self.metrics.passed(len(results) - dead, dead)
        if not await self._clear_all(collection, docs, keep_tombstones=model.keep_tombstones):
            await self._clear_raced(collection, docs)
        return len(results)

    def _publish(self, pipe: Any, doc: Mapping[str, Any], event: Any) -> bool:
        """Queue the event's XADD; False: not a valid event, queued for the dead letters."""
        try:
            fields = Envelope.model_validate(event).to_stream_fields()
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
            dead = {
                DEAD_ERROR: f"not a valid event: {exc}"[:2000],
                "document": str(doc["_id"]),
                "entry": json.dumps(event, default=str),
            }
            pipe.xadd(self.dead_letter_stream, dead)
            return False
        pipe.xadd(self._stream, fields, maxlen=self._maxlen, approximate=True)
        return True

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
