"""All database access for the change journal."""

from typing import Any

from momentum_libs.memory import remember
from pymongo.errors import BulkWriteError, DuplicateKeyError

from momentum_tracking.changes.models import ChangeEntry, ChangeHead

HEAD_ATTEMPTS = 3
DUPLICATE_KEY = 11000
MAX_HEADS_HELD = 10_000


def entry_id(user_id: str, seq: int) -> str:
    return f"{user_id}:{seq}"


class ChangeRepository:
    def __init__(self) -> None:
        # The number this process journaled last, per user: where its next probe starts,
        # without reading the head first. It is never ahead of the stored numbers (each
        # is one this process stored, and numbers only grow until the user is forgotten),
        # so the probe's rule below holds from it as from the head.
        self._last_journaled: dict[str, int] = {}

    async def head(self, user_id: str) -> int:
        """The highest number journaled for the user (0: none)."""
        raw = await ChangeHead.get_pymongo_collection().find_one(
            {"_id": user_id, "user_id": user_id}
        )
        return int(raw["seq"]) if raw else 0

    async def known_events(self, user_id: str, event_ids: list[str]) -> set[str]:
        """Those of ``event_ids`` the user's journal holds already."""
        found = ChangeEntry.get_pymongo_collection().find(
            {"user_id": user_id, "event_id": {"$in": event_ids}}, projection={"event_id": 1}
        )
        return {doc["event_id"] async for doc in found}

    async def append(self, user_id: str, *entries: dict[str, Any]) -> int:
        """Store the entries, in order, under the user's next free numbers and return the
        last (the head, when ``entries`` is empty).

        The numbers start after the head (every number up to it is stored). The entries
        go in one ordered insert, which stops at a duplicate key: that number is stored
        (another replica journaled this user since, their partition moved), so the rest
        are numbered again after it, or after the head if that is further. So N is tried
        only once N-1 is there, and the numbers stay an unbroken run.
        """
        collection = ChangeEntry.get_pymongo_collection()
        remembered = self._last_journaled.pop(user_id, None)
        seq = remembered if remembered is not None else await self.head(user_id)
        pending = list(entries)
        while pending:
            docs = [
                {"_id": entry_id(user_id, n), "user_id": user_id, "seq": n, **fields}
                for n, fields in enumerate(pending, start=seq + 1)
            ]
            try:
                await collection.insert_many(docs, ordered=True)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if not errors or any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                stored = int(exc.details.get("nInserted", 0))
                pending = pending[stored:]
                seq = max(seq + stored + 1, await self.head(user_id))
                continue
            seq += len(docs)
            pending = []
        if entries:
            await self._raise_head(user_id, seq)
        remember(self._last_journaled, user_id, seq, MAX_HEADS_HELD)
        return seq

    async def _raise_head(self, user_id: str, seq: int) -> None:
        heads = ChangeHead.get_pymongo_collection()
        for _ in range(HEAD_ATTEMPTS):
            try:
                await heads.update_one(
                    {"_id": user_id, "user_id": user_id}, {"$max": {"seq": seq}}, upsert=True
                )
                return
            except DuplicateKeyError:
                continue  # two first entries upserted the head at once: the other made it

    async def run_after(self, user_id: str, since: int, count: int) -> list[ChangeEntry]:
        """The entries numbered since+1, since+2, ... up to ``count`` of them, stopping at
        the first not (yet) stored: each is fetched by its ``_id``."""
        wanted = [entry_id(user_id, seq) for seq in range(since + 1, since + count + 1)]
        raw = ChangeEntry.get_pymongo_collection().find(
            {"_id": {"$in": wanted}, "user_id": user_id}
        )
        found = {doc["seq"]: ChangeEntry.model_validate(doc) async for doc in raw}
        run: list[ChangeEntry] = []
        for seq in range(since + 1, since + count + 1):
            if seq not in found:
                break
            run.append(found[seq])
        return run

    async def forget_user(self, user_id: str) -> None:
        self._last_journaled.pop(user_id, None)
        await ChangeEntry.get_pymongo_collection().delete_many({"user_id": user_id})
        await ChangeHead.get_pymongo_collection().delete_one({"_id": user_id, "user_id": user_id})
