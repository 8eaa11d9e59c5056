"""The ``weekly_targets`` collection, named by the storage contract (tracking_store in libs)."""

from datetime import datetime

from momentum_libs.outbox import OUTBOX_INDEX
from momentum_libs.tracking_store import TARGETS
from pymongo import IndexModel

from momentum_tracking.ids import PURGE_INDEX, TrackedDocument


def live_slot(goal_id: str, week_start: str) -> str:
    return f"{goal_id}:{week_start}"


def dead_slot(target_id: str) -> str:
    return f"deleted:{target_id}"


class WeeklyTarget(TrackedDocument):
    goal_id: str
    week_start: str  # "YYYY-MM-DD", a Monday
    target_minutes: int
    note: str | None = None
    # "<goal_id>:<week_start>" while live, "deleted:<id>" once tombstoned: a unique index on
    # (user_id, it) allows one target per goal and week, and a deleted one never blocks a
    # new one (user_id first: the shard key must prefix a unique index of a sharded one).
    slot: str
    created_at: datetime
    updated_at: datetime

    class Settings:
        name = TARGETS
        indexes = [
            OUTBOX_INDEX,
            PURGE_INDEX,
            IndexModel([("user_id", 1), ("week_start", -1)], name="user_week"),
            # All of a user's documents, for analytics' rebuild: nx-27017 serves a query
            # from single-field indexes only (a compound prefix would do on MongoDB).
            IndexModel([("user_id", 1)], name="user"),
            IndexModel(
                [("user_id", 1), ("goal_id", 1), ("week_start", -1)],
                name="user_goal_week",
            ),
            IndexModel([("user_id", 1), ("slot", 1)], unique=True, name="one_target_per_week"),
        ]
