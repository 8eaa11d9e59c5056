"""The projections (database ``momentum_analytics``), shaped for reads by ``_id``.

- ``analytics_users``: one document per user — timezone, goals (with the active one),
  streak state, per-month totals, and the last days' totals (``recent_days``, what the
  dashboard reads). Every change of a user's days or goals commits here, guarded by
  ``version`` (optimistic concurrency): the last write of an event, after its months.
- ``analytics_months``: one document per user and month: ``days`` maps "YYYY-MM-DD" to
  that day's minutes over all goals (``t``) and per goal (``g``), and ``logs`` holds each
  daily log of the month as analytics last saw it, with its payload ``version``. A log
  event applies only where it is newer, and a day's totals are always recomputed from
  the logs of that day, in the same document write (idempotent, order-independent).
- ``analytics_targets``: one document per weekly target, version-guarded likewise.

Why months: a read costs what the documents it fetches hold, so a month (at most 31
days) keeps the weekly and heatmap reads flat whatever the history, and keeping a
month's logs beside its days makes applying a log event one read and one write of one
document, and the rebuild one write per month instead of one per log.

Plain pydantic models over PyMongo's async API: every write here is a version-guarded
single-document write, which Beanie's document API does not express, and the rebuild
builds these models without a database.
"""

from datetime import date, datetime
from typing import Any, ClassVar

from momentum_libs.timestamps import UtcDatetime
from pydantic import BaseModel, ConfigDict, Field, computed_field
from pymongo import IndexModel

from momentum_analytics.projections.streaks import StreakState


class Stored(BaseModel):
    """A stored document: ``id`` is ``_id``; dates are "YYYY-MM-DD" strings in MongoDB."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    COLLECTION: ClassVar[str]
    INDEXES: ClassVar[list[IndexModel]] = []

    id: str = Field(alias="_id")

    def to_mongo(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class GoalState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = ""
    is_active: bool = False
    activated_at: UtcDatetime | None = None
    version: int = 0
    deleted: bool = False


class ActiveGoal(BaseModel):
    id: str
    title: str


class DayTotal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    t: int = 0
    g: dict[str, int] = {}


class UserProjection(Stored):
    COLLECTION = "analytics_users"

    version: int = 0
    deleted: bool = False
    timezone: str = "UTC"
    timezone_at: datetime | None = None
    goals: dict[str, GoalState] = {}
    active_goal: ActiveGoal | None = None
    streak: StreakState = Field(default_factory=StreakState)
    month_totals: dict[str, int] = {}
    # Every day on or after ``recent_from`` with minutes is in ``recent_days`` (None: no
    # such window, read the months), so the current week is read with the user alone.
    recent_from: date | None = None
    recent_days: dict[str, DayTotal] = {}

    @property
    def deleted_goals(self) -> set[str]:
        return {gid for gid, goal in self.goals.items() if goal.deleted}

    @property
    def total_minutes(self) -> int:
        return sum(self.month_totals.values())


class LogEntry(BaseModel):
    """A daily log as analytics last saw it in a month; ``deleted`` once it left the month."""

    model_config = ConfigDict(extra="ignore")

    date: str
    goal_id: str
    minutes: int
    version: int
    deleted: bool = False


class MonthDays(Stored):
    COLLECTION = "analytics_months"
    INDEXES = [IndexModel([("user_id", 1)], name="user")]

    user_id: str
    month: str
    version: int = 0
    days: dict[str, DayTotal] = {}
    logs: dict[str, LogEntry] = {}

    @property
    def total(self) -> int:
        return sum(day.t for day in self.days.values())


def month_of(day: str) -> str:
    """ "YYYY-MM" of a "YYYY-MM-DD"."""
    return day[:7]


def month_doc_id(user_id: str, month: str) -> str:
    return f"{user_id}:{month}"


def empty_month(user_id: str, month: str) -> MonthDays:
    return MonthDays(id=month_doc_id(user_id, month), user_id=user_id, month=month)


class TargetFact(Stored):
    COLLECTION = "analytics_targets"
    # Single-field indexes only: nx-27017 answers a query on a compound index by a scan.
    INDEXES = [
        IndexModel([("user_id", 1)], name="user"),
        IndexModel([("week_key", 1)], name="week_key"),
    ]

    user_id: str
    goal_id: str
    week_start: str
    target_minutes: int
    version: int
    deleted: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def week_key(self) -> str:
        return target_week_key(self.user_id, self.goal_id, self.week_start)


def target_week_key(user_id: str, goal_id: str, week_start: str) -> str:
    return f"{user_id}|{goal_id}|{week_start}"


MODELS: tuple[type[Stored], ...] = (UserProjection, MonthDays, TargetFact)
