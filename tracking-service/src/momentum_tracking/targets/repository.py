"""All database access for weekly targets."""

from bson import ObjectId
from momentum_libs.outbox import Notify

from momentum_tracking.common import dated_query
from momentum_tracking.owned import OwnedRepository
from momentum_tracking.targets.models import WeeklyTarget


class TargetRepository(OwnedRepository[WeeklyTarget]):
    def __init__(self, notify: Notify) -> None:
        super().__init__(WeeklyTarget, notify, "Weekly target")

    async def list_page(
        self,
        user_id: str,
        goal_id: str | None,
        week_from: str | None,
        week_to: str | None,
        after: tuple[str, ObjectId] | None,
        limit: int,
    ) -> list[WeeklyTarget]:
        query = dated_query("week_start", user_id, goal_id, week_from, week_to, after)
        return await WeeklyTarget.find(query).sort("-week_start", "-_id").limit(limit).to_list()
