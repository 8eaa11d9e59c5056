"""The ``goals`` collection, named by the storage contract (momentum_libs.tracking_store)."""

from datetime import datetime

from momentum_libs.outbox import OUTBOX_INDEX
from momentum_libs.tracking_store import GOALS
from pymongo import IndexModel

from momentum_tracking.ids import PURGE_INDEX, TrackedDocument


class Goal(TrackedDocument):
    title: str
    description: str | None = None
    target_date: str | None = None  # "YYYY-MM-DD"
    is_active: bool = False
    # The user's id while the goal is active, else the goal's own id: a unique index on
    # (user_id, it) means a user never has two active goals, whatever the races. The
    # index starts with user_id, the shard key: MongoDB enforces a unique index of a
    # sharded collection only when it contains the shard key as a prefix.
    active_slot: str
    activated_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    class Settings:
        name = GOALS
        indexes = [
            OUTBOX_INDEX,
            PURGE_INDEX,
            IndexModel([("user_id", 1), ("created_at", -1)], name="user_created"),
            # All of a user's documents, for analytics' rebuild: nx-27017 serves a query
            # from single-field indexes only (a compound prefix would do on MongoDB).
            IndexModel([("user_id", 1)], name="user"),
            IndexModel([("user_id", 1), ("active_slot", 1)], unique=True, name="one_active_goal"),
        ]
