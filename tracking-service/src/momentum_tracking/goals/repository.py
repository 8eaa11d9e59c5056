"""All database access for goals."""

from datetime import datetime, timedelta

from momentum_libs.outbox import Notify

from momentum_tracking.common import keyset_after
from momentum_tracking.goals.models import Goal
from momentum_tracking.ids import DocumentId
from momentum_tracking.owned import TOMBSTONE_RETENTION, OwnedRepository


class GoalRepository(OwnedRepository[Goal]):
    def __init__(self, notify: Notify, retention: timedelta = TOMBSTONE_RETENTION) -> None:
        super().__init__(Goal, notify, "Goal", retention)

    async def get_active(self, user_id: str) -> Goal | None:
        return await Goal.find_one({"user_id": user_id, "active_slot": user_id, "deleted": False})

    async def list_page(
        self,
        user_id: str,
        is_active: bool | None,
        after: tuple[datetime, DocumentId] | None,
        limit: int,
    ) -> list[Goal]:
        query: dict[str, object] = {"user_id": user_id, "deleted": False}
        if is_active is not None:
            query["is_active"] = is_active
        if after is not None:
            query.update(keyset_after("created_at", after[0], after[1]))
        return await Goal.find(query).sort("-created_at", "-_id").limit(limit).to_list()
