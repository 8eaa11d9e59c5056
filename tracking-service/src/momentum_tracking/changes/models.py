"""The change journal behind ``GET /changes``: one entry per change, numbered per user.

An entry's ``_id`` is ``"<user_id>:<seq>"``: inserting it claims its number (a single-
document write, so two writers never share one), and a writer tries number N only after
seeing N-1 stored (the head, or a duplicate key). So the stored numbers of a user are
always 1..K plus what is being written: a reader that returns only an unbroken run never
passes a change that commits late. Entries expire after the tombstone retention.
"""

from datetime import datetime
from typing import Literal

from beanie import Document
from pydantic import Field
from pymongo import IndexModel

ChangeType = Literal["goal", "weekly_target", "daily_log", "break"]
ChangeOp = Literal["upsert", "delete"]


class ChangeEntry(Document):
    id: str = Field(alias="_id")  # type: ignore[assignment]
    user_id: str
    seq: int
    type: ChangeType
    entity_id: str
    op: ChangeOp
    version: int
    event_id: str
    changed_at: datetime
    expires_at: datetime

    class Settings:
        name = "sync_changes"
        indexes = [
            # A redelivered event is journaled once (looked up before appending).
            IndexModel([("user_id", 1), ("event_id", 1)], name="user_event"),
            IndexModel([("user_id", 1)], name="user"),
            IndexModel([("expires_at", 1)], expireAfterSeconds=0, name="expires"),
        ]


class ChangeHead(Document):
    """The highest number journaled for a user (``_id`` is the user's id): where the next
    writer starts looking, and the token an initial sync ends with."""

    id: str = Field(alias="_id")  # type: ignore[assignment]
    user_id: str
    seq: int

    class Settings:
        name = "sync_heads"
        indexes = [IndexModel([("user_id", 1)], name="user")]  # the shard key's index
