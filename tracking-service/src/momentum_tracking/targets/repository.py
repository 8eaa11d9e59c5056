"""All database access for weekly targets."""

from datetime import timedelta

from momentum_libs.outbox import Notify

from momentum_tracking.common import dated_query
from momentum_tracking.ids import DocumentId
from momentum_tracking.owned import TOMBSTONE_RETENTION, OwnedRepository
from momentum_tracking.targets.models import WeeklyTarget


class TargetRepository(OwnedRepository[WeeklyTarget]):
    def __init__(self, notify: Notify, retention: timedelta = TOMBSTONE_RETENTION) -> None:
        super().__init__(WeeklyTarget, notify, "Weekly target", retention)

    async def list_page(
        self,
        user_id: str,
        goal_id: str | None,
        week_from: str | None,
        week_to: str | None,
        after: tuple[str, DocumentId] | None,
        limit: int,
    ) -> list[WeeklyTarget]:
        query = dated_query("week_start", user_id, goal_id, week_from, week_to, after)
        return await WeeklyTarget.find(query).sort("-week_start", "-_id").limit(limit).to_list()
