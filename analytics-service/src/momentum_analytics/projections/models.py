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

from momentum_libs.streak_rules import BreakFact, DaySettings, Fold
from momentum_libs.timestamps import UtcDatetime
from pydantic import BaseModel, ConfigDict, Field
from pymongo import IndexModel


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
    month_totals: dict[str, int] = {}
    # Every day on or after ``recent_from`` with minutes is in ``recent_days`` (None: no
    # such window, read the months), so the current week is read with the user alone.
    recent_from: date | None = None
    recent_days: dict[str, DayTotal] = {}
    # Issue 15's rules (projections/rules.py): the settings history, the breaks, and per
    # scope (rules.ALL_GOALS, or a goal id) the fold of every day before ``folds_at``.
    # ``folds_at`` equals ``recent_from`` when the folds are current: a read folds only
    # the recent days on top (None or different: a read folds every month).
    day_settings: list[DaySettings] = []
    breaks: dict[str, BreakFact] = {}
    folds: dict[str, Fold] = {}
    folds_at: date | None = None

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


TOMBSTONES_KEPT = 64
"""Deleted log entries a month keeps (about 130 bytes each): see :class:`MonthDays`."""


class MonthDays(Stored):
    """A user's month. Its size is bounded: live logs (what the user has) plus at most
    :data:`TOMBSTONES_KEPT` deleted entries.

    A deleted entry (the log's final ``log.deleted``, or the log moved to another month)
    is what refuses a late or duplicated older event of that log here: its version beats
    theirs. Kept for ever, they made one heavy user's month grow without bound (13,562 of
    its 13,902 entries were deleted ones). So only the :data:`TOMBSTONES_KEPT` of the
    highest log ids stay; the others are dropped, and ``dropped_through`` remembers the
    highest log id ever dropped. Ids are never reused, so a log whose id is above the mark
    cannot be a dropped one: its events need no further check. A live placement of a log
    this month does not hold, and whose id is at most the mark, may be one coming back,
    or a new log whose id merely sorts low (ids do not grow with age: ObjectIds of several
    processes, clients' random UUIDs); every month of the user, then tracking's document,
    tell which (see :meth:`momentum_analytics.projections.service.ProjectionService._is_stale`).
    Keeping the highest ids keeps that lookup rare for one process's ObjectIds.
    """

    COLLECTION = "analytics_months"
    INDEXES = [IndexModel([("user_id", 1)], name="user")]

    user_id: str
    month: str
    version: int = 0
    days: dict[str, DayTotal] = {}
    logs: dict[str, LogEntry] = {}
    dropped_through: str | None = None

    @property
    def total(self) -> int:
        return sum(day.t for day in self.days.values())

    def may_have_dropped(self, log_id: str) -> bool:
        """Whether ``log_id`` could be a log whose deleted entry this month dropped."""
        return self.dropped_through is not None and log_id <= self.dropped_through

    def drop_old_tombstones(self, keep: int = TOMBSTONES_KEPT) -> None:
        """Keep only the ``keep`` deleted entries of the highest log ids."""
        gone = sorted(log_id for log_id, entry in self.logs.items() if entry.deleted)
        dropped = gone[: max(len(gone) - keep, 0)]
        if not dropped:
            return
        for log_id in dropped:
            del self.logs[log_id]
        self.dropped_through = max(dropped[-1], self.dropped_through or "")


def month_of(day: str) -> str:
    """ "YYYY-MM" of a "YYYY-MM-DD"."""
    return day[:7]


def month_doc_id(user_id: str, month: str) -> str:
    return f"{user_id}:{month}"


def empty_month(user_id: str, month: str) -> MonthDays:
    return MonthDays(id=month_doc_id(user_id, month), user_id=user_id, month=month)


class TargetFact(Stored):
    COLLECTION = "analytics_targets"
    # A weekly summary's targets are found by user_id (the shard key) with goal_id and
    # week_start: the index on user_id leaves a user's targets (about 50 a year per goal)
    # to filter, on nx-27017 as on MongoDB.
    INDEXES = [IndexModel([("user_id", 1)], name="user")]

    user_id: str
    goal_id: str
    week_start: str
    target_minutes: int
    version: int
    deleted: bool = False


MODELS: tuple[type[Stored], ...] = (UserProjection, MonthDays, TargetFact)
