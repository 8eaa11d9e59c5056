"""The base of tracking's repositories: documents owned by one user, written with events.

Every read carries the owner's ``user_id`` (another user's document is "not found",
never "forbidden") and skips tombstones; every write goes through the libs outbox base.
"""

from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from momentum_libs.clock import utcnow
from momentum_libs.conditional import IfMatch, precondition_failed
from momentum_libs.events import Envelope
from momentum_libs.outbox import Build, Notify, OutboxDocument, OutboxRepository
from momentum_libs.problems import ProblemError, validation_problem
from momentum_libs.retry import WRITE_ATTEMPTS
from pymongo.errors import DuplicateKeyError

from momentum_tracking.common import not_found
from momentum_tracking.ids import DocumentId, parse_id

D = TypeVar("D", bound=OutboxDocument)

TOMBSTONE_RETENTION = timedelta(days=90)
"""The default of ``MOMENTUM_TRACKING_TOMBSTONE_RETENTION_DAYS``."""

Create = Callable[[str], Awaitable[D]]
"""A service's create of a new document with this client-chosen id (POST's rules)."""

Replace = Callable[[D], Awaitable[D]]
"""A service's replacement of the document as read (PATCH's write path, every field given)."""

ERASE_BATCH = 200
"""Documents read per query while erasing (each is then tombstoned on its own)."""


class OwnedRepository(OutboxRepository[D]):
    def __init__(
        self,
        model: type[D],
        notify: Notify,
        what: str,
        retention: timedelta = TOMBSTONE_RETENTION,
    ) -> None:
        super().__init__(model, notify)
        self.what = what
        """What a client calls it, for its 404: "Goal", "Daily log"."""
        self.retention = retention
        """How long a kept tombstone stays (the model's ``keep_tombstones``)."""

    async def write(
        self, doc: D, fields: Mapping[str, Any], event: Envelope | None, *, delete: bool = False
    ) -> D | None:
        if delete and self.model.keep_tombstones:
            fields = {**fields, "purge_at": utcnow() + self.retention}
        return await super().write(doc, fields, event, delete=delete)

    async def is_tombstone(self, user_id: str, doc_id: Any) -> bool:
        """Whether ``doc_id`` names a deleted document of the user still remembered."""
        query = {"_id": doc_id, "user_id": user_id, "deleted": True}
        return await self.model.find_one(query) is not None

    async def get(self, user_id: str, doc_id: Any) -> D | None:
        query = {"_id": doc_id, "user_id": user_id, "deleted": False}
        return await self.model.find_one(query)

    async def get_or_404(self, user_id: str, doc_id: str) -> D:
        """The user's document of the id a client sent; 404 for a missing or a bad one."""
        oid = parse_id(doc_id)
        doc = None if oid is None else await self.get(user_id, oid)
        if doc is None:
            raise not_found(self.what)
        return doc

    async def put(
        self,
        user_id: str,
        raw_id: str,
        create: "Create[D]",
        replace: "Replace[D]",
        if_match: IfMatch | None = None,
    ) -> tuple[D, bool]:
        """``PUT`` of the user's document ``raw_id``: replaced when it lives, created (True)
        when the id is new, 410 when it names a remembered tombstone (never brought back).

        A new document needs a client's UUID (ObjectIds are made by POST alone), and an
        ``If-Match`` needs a current one (RFC 9110 §13.1.1: else 412). Two PUTs racing to
        create one id: one insert wins, the other sees it and replaces (a no-op for the
        same body).
        """
        doc_id = parse_id(raw_id)
        if doc_id is None:
            raise validation_problem(["path", "id"], "An id to create must be a UUID.")
        for _ in range(WRITE_ATTEMPTS):
            existing = await self.get(user_id, doc_id)
            if existing is not None:
                return await replace(existing), False
            if if_match is not None:
                raise precondition_failed()
            await self._refuse_unless_new(user_id, doc_id)
            assert isinstance(doc_id, str)
            try:
                return await create(doc_id), True
            except (DuplicateKeyError, ProblemError) as exc:
                if isinstance(exc, ProblemError) and exc.status != 409:
                    raise
                if not await self._holds(user_id, doc_id):
                    raise _taken(exc) from None
        raise ProblemError(409, "Other writes of this id kept racing this one; try again.")

    async def _refuse_unless_new(self, user_id: str, doc_id: DocumentId) -> None:
        """410 for a deleted id (within the retention), 404 for an ObjectId none made."""
        if await self.is_tombstone(user_id, doc_id):
            raise ProblemError(
                410,
                f"This {self.what.lower()} was deleted; an id is never used again "
                "(create another with a new UUID).",
                type_slug="gone",
            )
        if not isinstance(doc_id, str):
            raise not_found(self.what)

    async def _holds(self, user_id: str, doc_id: DocumentId) -> bool:
        """Whether the user has a document (live or a tombstone) of this id."""
        return await self.model.find_one({"_id": doc_id, "user_id": user_id}) is not None

    async def change_or_404(
        self,
        user_id: str,
        doc_id: str,
        build: Build[D],
        *,
        delete: bool = False,
        if_match: IfMatch | None = None,
    ) -> D:
        """:meth:`change` of the user's document ``doc_id``; 404 when there is none, 412
        when it no longer has the client's ``if_match``."""
        oid = parse_id(doc_id)
        written = None
        if oid is not None:

            async def load() -> D | None:
                return await self.get(user_id, oid)

            written = await self.change(load, build, delete=delete, if_match=if_match)
        if written is None:
            raise not_found(self.what)
        return written

    async def tombstone(
        self, user_id: str, doc: D, build: Build[D], *, if_match: IfMatch | None = None
    ) -> None:
        """Tombstone ``doc`` (as read) with its event, unless it is gone already."""

        async def load() -> D | None:
            return await self.get(user_id, doc.id)

        await self.change(load, build, delete=True, first=doc, if_match=if_match)

    async def all_of_user(self, user_id: str) -> list[D]:
        """Every live document of the user (a sync's first, full read; exports, imports)."""
        return await self.model.find({"user_id": user_id, "deleted": False}).to_list()

    async def by_ids(self, user_id: str, doc_ids: list[DocumentId]) -> list[D]:
        """The user's documents of these ids, tombstones included (the change feed tells
        a deleted one from a live one)."""
        return await self.model.find({"_id": {"$in": doc_ids}, "user_id": user_id}).to_list()

    async def some_of_user(self, user_id: str, limit: int, **match: str | None) -> list[D]:
        """Up to ``limit`` live documents of the user matching ``match`` (None: any), for
        erasing them batch by batch."""
        query: dict[str, Any] = {"user_id": user_id, "deleted": False}
        query.update({k: v for k, v in match.items() if v is not None})
        return await self.model.find(query).limit(limit).to_list()

    async def tombstone_all(self, user_id: str, build: Build[D], **match: str | None) -> int:
        """Tombstone, each with its event, every live document of the user matching ``match``."""

        async def load_one(oid: Any) -> D | None:
            return await self.get(user_id, oid)

        return await self.tombstone_each(
            lambda: self.some_of_user(user_id, ERASE_BATCH, **match), load_one, build
        )


def _taken(exc: Exception) -> ProblemError:
    """The create failed for a reason of its own (a 409 rule), or its id is another
    user's (a UUID can be chosen twice only on purpose): 409 either way."""
    if isinstance(exc, ProblemError):
        return exc
    return ProblemError(409, "This id is taken; choose another UUID.")
