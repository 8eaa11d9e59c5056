"""All database access for breaks."""

from typing import Any

from momentum_libs.outbox import Notify

from momentum_tracking.breaks.models import Break
from momentum_tracking.common import keyset_after
from momentum_tracking.ids import DocumentId
from momentum_tracking.owned import OwnedRepository


class BreakRepository(OwnedRepository[Break]):
    def __init__(self, notify: Notify) -> None:
        super().__init__(Break, notify, "Break")

    async def list_page(
        self,
        user_id: str,
        first: str | None,
        last: str | None,
        after: tuple[str, DocumentId] | None,
        limit: int,
    ) -> list[Break]:
        """The user's breaks with a day in [first, last], latest start first."""
        query: dict[str, Any] = {"user_id": user_id, "deleted": False}
        if first is not None:
            query["end_date"] = {"$gte": first}
        if last is not None:
            query["start_date"] = {"$lte": last}
        if after is not None:
            query.update(keyset_after("start_date", after[0], after[1]))
        return await Break.find(query).sort("-start_date", "-_id").limit(limit).to_list()

    async def overlapping(self, brk: Break) -> Break | None:
        """Another live break of the same user and scope sharing a day with ``brk``."""
        query = {
            "user_id": brk.user_id,
            "goal_id": brk.goal_id,
            "deleted": False,
            "start_date": {"$lte": brk.end_date},
            "end_date": {"$gte": brk.start_date},
        }
        # ``brk`` itself is left out here, not by ``_id: {$ne}``: the embedded MongoDB
        # server matches nothing when that meets ``goal_id: null``. Two are enough: at
        # most one of them is ``brk``.
        found = await Break.find(query).limit(2).to_list()
        return next((other for other in found if other.id != brk.id), None)
