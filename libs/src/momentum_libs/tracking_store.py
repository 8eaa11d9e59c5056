"""The storage contract between tracking-service (its writer) and analytics' rebuild.

analytics rebuilds its projections from tracking's database, the source of truth, so the
collections and fields below are a contract: tracking's documents are declared through
it (their collection names come from here, and a test checks their fields against it),
and the rebuild reads only through it. Change a field here, and both sides change.

Version semantics: every document carries ``version``, 1 at insert and bumped by every
write to it, the outbox relay's clears included. The event a write emits carries the
version that write gave the document, so a document's ``version`` is never below that of
any event it emitted: a projection built from a document may be replaced by a later event
only if that event's version is higher. ``deleted`` marks a tombstone, whose delete
event may not be published yet; the relay removes the document after, or (goals, targets,
logs) keeps it until its ``purge_at``. Both mean "gone". ``_id`` is an ObjectId, or a
client-chosen UUID string (``PUT``): ``id`` is its string either way.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, field_validator

from momentum_libs.events import BreakKind
from momentum_libs.ids import parse_object_id

GOALS = "goals"
TARGETS = "weekly_targets"
LOGS = "daily_logs"
BREAKS = "breaks"


class _Stored(BaseModel):
    """A document as the rebuild reads it: only the contract's fields; others ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    user_id: str
    version: int = 1
    deleted: bool = False

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "Any":
        return cls.model_validate({**doc, "id": str(doc["_id"])})


class StoredGoal(_Stored):
    title: str
    is_active: bool = False
    activated_at: datetime | None = None

    @field_validator("activated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A driver without tz_aware hands back naive datetimes: stored ones are UTC.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class StoredTarget(_Stored):
    goal_id: str
    week_start: str  # "YYYY-MM-DD", a Monday
    target_minutes: int


class StoredLog(_Stored):
    goal_id: str
    date: str  # "YYYY-MM-DD", the user's local calendar date
    minutes: int


class StoredBreak(_Stored):
    goal_id: str | None  # None: every goal of the user
    start_date: str  # "YYYY-MM-DD", the user's local dates, both inclusive
    end_date: str
    kind: BreakKind


CONTRACT: dict[str, type[_Stored]] = {
    GOALS: StoredGoal,
    TARGETS: StoredTarget,
    LOGS: StoredLog,
    BREAKS: StoredBreak,
}
"""Each collection of tracking's database the rebuild reads, and its documents' shape."""


def document_id(id: str) -> ObjectId | str:
    """The ``_id`` a document's ``id`` string stands for: an ObjectId, else the UUID itself."""
    oid = parse_object_id(id)
    return oid if oid is not None else id


def contract_fields(model: type[_Stored]) -> dict[str, Any]:
    """The stored fields a contract model reads (``id`` is the document's ``_id``)."""
    return {name: f.annotation for name, f in model.model_fields.items() if name != "id"}
