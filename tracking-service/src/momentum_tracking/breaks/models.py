"""The ``breaks`` collection (named by the storage contract, momentum_libs.tracking_store):
days a user declared protected, for one goal or for all."""

from datetime import datetime

from momentum_libs.events import BreakKind
from momentum_libs.outbox import OUTBOX_INDEX, OutboxDocument
from momentum_libs.tracking_store import BREAKS
from pymongo import IndexModel


class Break(OutboxDocument):
    user_id: str
    goal_id: str | None  # None: every goal of the user
    start_date: str  # "YYYY-MM-DD", the user's local dates, both inclusive
    end_date: str
    kind: BreakKind
    note: str | None = None
    created_at: datetime
    updated_at: datetime

    class Settings:
        name = BREAKS
        indexes = [
            OUTBOX_INDEX,
            IndexModel([("user_id", 1), ("start_date", -1)], name="user_start"),
            # All of a user's documents (erasure): nx-27017 serves a query from
            # single-field indexes only (a compound prefix would do on MongoDB).
            IndexModel([("user_id", 1)], name="user"),
            IndexModel([("user_id", 1), ("goal_id", 1), ("start_date", -1)], name="user_goal"),
        ]
