"""The base of tracking's repositories: documents owned by one user, written with events.

Every read carries the owner's ``user_id`` (another user's document is "not found",
never "forbidden") and skips tombstones; every write goes through the libs outbox base.
"""

from typing import Any, TypeVar

from momentum_libs.conditional import IfMatch
from momentum_libs.ids import parse_object_id
from momentum_libs.outbox import Build, Notify, OutboxDocument, OutboxRepository

from momentum_tracking.common import not_found

D = TypeVar("D", bound=OutboxDocument)

ERASE_BATCH = 200
"""Documents read per query while erasing (each is then tombstoned on its own)."""


class OwnedRepository(OutboxRepository[D]):
    def __init__(self, model: type[D], notify: Notify, what: str) -> None:
        super().__init__(model, notify)
        self.what = what
        """What a client calls it, for its 404: "Goal", "Daily log"."""

    async def get(self, user_id: str, doc_id: Any) -> D | None:
        query = {"_id": doc_id, "user_id": user_id, "deleted": False}
        return await self.model.find_one(query)

    async def get_or_404(self, user_id: str, doc_id: str) -> D:
        """The user's document of the id a client sent; 404 for a missing or a bad one."""
        oid = parse_object_id(doc_id)
        doc = None if oid is None else await self.get(user_id, oid)
        if doc is None:
            raise not_found(self.what)
        return doc

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
        oid = parse_object_id(doc_id)
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
        """Every live document of the user (exports, imports: per-user data only)."""
        return await self.model.find({"user_id": user_id, "deleted": False}).to_list()

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
