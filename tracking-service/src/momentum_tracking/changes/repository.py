"""All database access for the change journal."""

from typing import Any

from momentum_libs.memory import remember
from pymongo.errors import DuplicateKeyError

from momentum_tracking.changes.models import ChangeEntry, ChangeHead

HEAD_ATTEMPTS = 3
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

    async def has_event(self, user_id: str, event_id: str) -> bool:
        found = await ChangeEntry.get_pymongo_collection().find_one(
            {"user_id": user_id, "event_id": event_id}, projection={"_id": 1}
        )
        return found is not None

    async def append(self, user_id: str, fields: dict[str, Any]) -> int:
        """Store an entry under the user's next free number and return it.

        The probe starts after the head (every number up to it is stored) and moves on
        at each duplicate key, which means that number is stored: so N is tried only once
        N-1 is there, and the numbers stay an unbroken run.
        """
        entries = ChangeEntry.get_pymongo_collection()
        remembered = self._last_journaled.pop(user_id, None)
        seq = (remembered if remembered is not None else await self.head(user_id)) + 1
        while True:
            doc = {"_id": entry_id(user_id, seq), "user_id": user_id, "seq": seq, **fields}
            try:
                await entries.insert_one(doc)
                break
            except DuplicateKeyError:
                # Another replica journaled this user since (their partition moved): read
                # its head once rather than probe every number it stored.
                seq = seq + 1 if remembered is None else max(seq, await self.head(user_id)) + 1
                remembered = None
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
