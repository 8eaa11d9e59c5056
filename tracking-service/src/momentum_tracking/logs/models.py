"""The ``daily_logs`` and ``idempotency_keys`` collections.

``daily_logs`` is declared through the storage contract (momentum_libs.tracking_store):
analytics rebuilds its projections from it.
"""

from datetime import datetime
from typing import Any, Literal

from beanie import Document
from momentum_libs.outbox import OUTBOX_INDEX
from momentum_libs.tracking_store import LOGS
from pydantic import Field
from pymongo import IndexModel

from momentum_tracking.ids import PURGE_INDEX, TrackedDocument


class DailyLog(TrackedDocument):
    goal_id: str
    date: str  # "YYYY-MM-DD", the user's local calendar date
    minutes: int
    note: str | None = None
    created_at: datetime
    updated_at: datetime

    class Settings:
        name = LOGS
        indexes = [
            OUTBOX_INDEX,
            PURGE_INDEX,
            IndexModel([("user_id", 1), ("date", -1)], name="user_date"),
            # All of a user's documents, for analytics' rebuild: nx-27017 serves a query
            # from single-field indexes only (a compound prefix would do on MongoDB).
            IndexModel([("user_id", 1)], name="user"),
            IndexModel(
                [("user_id", 1), ("goal_id", 1), ("date", -1)],
                name="user_goal_date",
            ),
        ]


class IdempotencyRecord(Document):
    """One ``Idempotency-Key`` of one user: ``_id`` is ``"<user_id>:<key>"``.

    Inserting it claims the key (a single-document write: exactly one request wins). It
    holds the id the log gets, so a retry that takes over an abandoned claim writes the
    same log, never a second one.
    """

    id: str = Field(alias="_id")  # type: ignore[assignment]
    user_id: str
    request_hash: str
    log_id: str
    state: Literal["pending", "done"] = "pending"
    response: dict[str, Any] | None = None
    lease_until: datetime
    expires_at: datetime

    class Settings:
        name = "idempotency_keys"
        indexes = [
            IndexModel([("user_id", 1)], name="user"),
            # MongoDB drops expired keys itself; reads check expires_at too.
            IndexModel([("expires_at", 1)], expireAfterSeconds=0, name="expires"),
        ]
