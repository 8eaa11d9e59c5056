"""Transactional outbox, embedded in the changed document itself, and the one write path.

A change and the event that tells of it are ONE single-document write: the event is
appended to the document's ``outbox`` array in the same insert or update. So no event
is lost between a write and its publish, and none is published for a write that did
not happen. The relay (:mod:`momentum_libs.relay`) publishes pending events to the
Redis stream and then clears them off the document; Redis being down only delays it.

Every write is guarded by the document's ``version`` (optimistic concurrency), and the
array is always written whole with ``$set``: the embedded MongoDB server corrupts an
array on ``$push`` of a document, and a whole-array write is right on MongoDB 7 too.
The relay bumps ``version`` when it clears, so a writer racing it retries with the
cleared array instead of re-adding events already published.

Every write also sets ``revision``, the document's ETag (:func:`entity_tag`). Not
``version``: the relay bumps that when it clears published events, which a client
cannot see, so an ETag on it would change under a client for nothing and turn its next
``If-Match`` into a spurious 412. Not a content hash either: ``revision`` costs nothing
to keep, and the write that checks it is the guarded write itself (see :meth:`change`).
It changes exactly with the writes below, and every one of them changes what a client
reads (``updated_at`` at least, or ``is_active`` of a deactivated goal); a write that
would change nothing is not made (a ``Build`` answers None).

Deletion writes a tombstone (``deleted=True`` plus the event); the relay removes the
document once its last event is out. Every read must therefore filter ``deleted``.

Why a flag as well as the array: the embedded MongoDB server cannot query an array's
emptiness, and an indexed boolean lets the relay find pending documents without a scan.

:class:`OutboxRepository` is the only code that writes such documents: services build
changes and events, repositories (subclasses) add their queries, and every insert,
guarded update and tombstone goes through the methods below, with the house's one retry
policy (:mod:`momentum_libs.retry`).
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from beanie import Document
from bson import ObjectId
from pymongo import IndexModel

from momentum_libs.conditional import IfMatch, precondition_failed
from momentum_libs.events import Envelope
from momentum_libs.problems import conflict
from momentum_libs.retry import WRITE_ATTEMPTS, backoff
from momentum_libs.tracing import current_traceparent

OUTBOX_INDEX = IndexModel(
    [("outbox_pending", 1)],
    # Partial: only documents with events to publish are in it, a handful at any time,
    # instead of every document ever written. nx-27017 accepts the option and builds a
    # full index (it has no partial ones): right there too, only larger.
    partialFilterExpression={"outbox_pending": True},
    # Not "outbox_pending", the full index's name: an index of the same name with other
    # options fails createIndexes (deploy/README.md says to drop the old one).
    name="outbox_pending_only",
)


class OutboxDocument(Document):
    """Base for documents whose changes emit events. Add OUTBOX_INDEX to Settings.indexes."""

    version: int = 1
    revision: int = 1
    """Bumped by every write through :class:`OutboxRepository`, never by the relay."""
    outbox: list[Envelope] = []
    outbox_pending: bool = False
    deleted: bool = False
    keep_tombstones: ClassVar[bool] = False
    """True: the relay keeps a tombstone once its events are out (the model expires it
    itself, e.g. with a TTL index), instead of removing it."""

    def shard_key(self) -> dict[str, Any]:
        """The shard-key fields beside ``_id`` a write to this document names (none: the
        collection is unsharded, or sharded on ``_id``)."""
        return {}


class OwnedDocument(OutboxDocument):
    """A document of one user, in a collection sharded on ``user_id`` (momentum_libs.sharding)."""

    user_id: str

    def shard_key(self) -> dict[str, Any]:
        return {"user_id": self.user_id}


D = TypeVar("D", bound=OutboxDocument)

Notify = Callable[[type["OutboxDocument"]], None]
"""Wakes the outbox relay after a write of that class of documents (it would find the event
at its next sweep anyway)."""

Change = tuple[Mapping[str, Any], Envelope | None]
"""The fields to set and the event telling of it (None: a change no consumer hears of)."""

Build = Callable[[D], Change | None]
"""The change to make to a document as read; None: nothing to change."""


def _no_relay(model: type["OutboxDocument"]) -> None:
    """The notify of a repository no relay serves (tools, tests of the repository alone)."""


def guard(doc: OutboxDocument) -> dict[str, Any]:
    """The filter of a write to ``doc`` as it was read: same version, not deleted; with
    its shard key, so a sharded cluster sends it to one shard."""
    return {"_id": doc.id, **doc.shard_key(), "version": doc.version, "deleted": False}


def entity_tag(doc: OutboxDocument) -> str:
    """The strong ETag of a document as a client reads it: its id and ``revision``."""
    return f'"{doc.id}.{doc.revision}"'


def traced(event: Envelope) -> Envelope:
    """``event`` carrying the current trace context (the request writing it), so the
    consumer's handling joins that trace; one that has its own keeps it."""
    if event.traceparent is not None:
        return event
    traceparent = current_traceparent()
    return event.model_copy(update={"traceparent": traceparent}) if traceparent else event


def update_with_event(
    doc: OutboxDocument,
    set_fields: Mapping[str, Any],
    event: Envelope | None,
    *,
    delete: bool = False,
) -> dict[str, Any]:
    """The update of a change to ``doc`` (as read) plus its event; bumps ``version`` and
    ``revision``. ``revision`` is set, not incremented: the guard pins the value read,
    and a document written before the field existed (read with its default) moves on."""
    fields = dict(set_fields)
    fields["revision"] = doc.revision + 1
    if event is not None:
        pending = [e.model_dump(mode="json") for e in doc.outbox]
        fields["outbox"] = [*pending, traced(event).model_dump(mode="json")]
        fields["outbox_pending"] = True
    if delete:
        fields["deleted"] = True
    return {"$set": fields, "$inc": {"version": 1}}


class OutboxRepository(Generic[D]):
    """Every write of ``model`` documents, each with its event in the same write.

    Subclasses add the reads (all of them filter ``deleted: False`` and carry the
    owner's ``user_id``). ``notify`` is the relay's: called after each write that left
    an event, so it is published at once instead of at the next sweep.
    """

    def __init__(self, model: type[D], notify: Notify = _no_relay) -> None:
        self.model = model
        self._notify = notify

    async def insert(self, doc: D, event: Envelope, *, publish: bool = True) -> D:
        """Insert ``doc`` with its creation event; DuplicateKeyError propagates.

        ``publish=False``: the relay is not woken yet, for an insert the caller may still
        take back with a tombstone (then its creation and deletion events usually go out
        in one pass); it calls :meth:`publish` after. The relay's sweep finds the events
        anyway, so nothing is lost if it never does.
        """
        doc.version = 1
        doc.outbox = [traced(event)]
        doc.outbox_pending = True
        await doc.insert()
        if publish:
            self._notify(self.model)
        return doc

    async def insert_many(
        self, docs: Sequence[tuple[D, Envelope]], *, publish: bool = True
    ) -> list[D]:
        """Insert each document with its creation event, in one round trip: each is still
        one single-document write (its event inside it), so any that lands has its
        event, and a failure part-way (DuplicateKeyError, a lost connection) propagates
        with the rest unwritten or written whole. ``publish`` as for :meth:`insert`."""
        for doc, event in docs:
            doc.version = 1
            doc.outbox = [traced(event)]
            doc.outbox_pending = True
        written = [doc for doc, _ in docs]
        if written:
            await self.model.insert_many(written)
        if written and publish:
            self._notify(self.model)
        return written

    def publish(self) -> None:
        """Wake the relay for what this repository wrote with ``publish=False``."""
        self._notify(self.model)

    async def write(
        self, doc: D, fields: Mapping[str, Any], event: Envelope | None, *, delete: bool = False
    ) -> D | None:
        """One guarded write of ``fields`` (and ``event``) to ``doc`` as it was read.

        Returns the document as written, or None when it changed (or went) meanwhile.
        DuplicateKeyError (a unique index) propagates.
        """
        collection = self.model.get_pymongo_collection()
        result = await collection.update_one(
            guard(doc), update_with_event(doc, fields, event, delete=delete)
        )
        if result.matched_count != 1:
            return None
        if event is not None:
            self._notify(self.model)
        changed = {k: v for k, v in fields.items() if not k.startswith("outbox")}
        changed.update(
            version=doc.version + 1, revision=doc.revision + 1, deleted=delete or doc.deleted
        )
        if event is not None:  # as stored: a next write from it keeps the unpublished events
            changed.update(outbox=[*doc.outbox, event], outbox_pending=True)
        return cast(D, doc.model_copy(update=changed))

    async def change(
        self,
        load: Callable[[], Awaitable[D | None]],
        build: Build[D],
        *,
        delete: bool = False,
        first: D | None = None,
        if_match: IfMatch | None = None,
    ) -> D | None:
        """Read, build the change, write it guarded; on a lost race read again and retry.

        Returns the document as written (as read when ``build`` says there is nothing to
        change), or None when it is gone. ``first``: the document as already read, used
        for the first attempt. After :data:`WRITE_ATTEMPTS` lost races: 409.

        ``if_match``: the client's precondition, checked against each document as read
        (412 when its :func:`entity_tag` is not named). The write is guarded by that very
        document's ``version``, so check and write are one single-document step: were
        the document changed in between, the write matches nothing, and the retry checks
        the precondition again on what it reads (still met when only the relay wrote).
        """
        for attempt in range(WRITE_ATTEMPTS):
            doc = first if attempt == 0 and first is not None else await load()
            if doc is None:
                return None
            if if_match is not None and not if_match.matches(entity_tag(doc)):
                raise precondition_failed()
            built = build(doc)
            if built is None:
                return doc
            fields, event = built
            written = await self.write(doc, fields, event, delete=delete)
            if written is not None:
                return written
            await backoff(attempt)
        raise conflict()

    async def change_by_id(
        self,
        get: Callable[[ObjectId], Awaitable[D | None]],
        doc_id: ObjectId,
        build: Build[D],
        *,
        delete: bool = False,
        first: D | None = None,
        if_match: IfMatch | None = None,
    ) -> D | None:
        """:meth:`change` of the document ``get(doc_id)`` reads."""

        async def load() -> D | None:
            return await get(doc_id)

        return await self.change(load, build, delete=delete, first=first, if_match=if_match)

    async def tombstone_each(
        self,
        batch: Callable[[], Awaitable[list[D]]],
        get: Callable[[ObjectId], Awaitable[D | None]],
        build: Build[D],
    ) -> int:
        """Tombstone, each with its event, every document ``batch`` finds until it finds none."""
        deleted = 0
        while docs := await batch():
            for doc in docs:
                assert doc.id is not None
                if await self.change_by_id(get, doc.id, build, delete=True, first=doc):
                    deleted += 1
        return deleted
