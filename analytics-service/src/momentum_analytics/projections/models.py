"""The projections (database ``momentum_analytics``), shaped for reads by ``_id``.

- ``analytics_users``: one document per user — timezone, goals (with the active one),
  streak state, per-year totals. Every change of a user's day totals or goals commits
  here, guarded by ``version`` (optimistic concurrency): the commit point of an event.
- ``analytics_years``: one document per user and year; ``days`` maps "YYYY-MM-DD" to
  that day's minutes over all goals (``t``) and per goal (``g``). Live events ``$set``
  or ``$unset`` single days (dotted paths); the rebuild replaces a whole year.
- ``analytics_log_facts``: one document per daily log as analytics last saw it, with the
  payload ``version``: an event applies only when it is newer, and a day's totals are
  always recomputed from the facts of that day (idempotent, order-independent).
- ``analytics_targets``: one document per weekly target, version-guarded likewise.

Plain pydantic models over PyMongo's async API: every write here is a guarded
single-document update or a dotted-path ``$set``, which Beanie's document API does not
express, and the rebuild builds these models without a database.
"""

from datetime import datetime
from typing import Any, ClassVar

from momentum_libs.timestamps import UtcDatetime
from pydantic import BaseModel, ConfigDict, Field
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


class UserProjection(Stored):
    COLLECTION = "analytics_users"

    version: int = 0
    deleted: bool = False
    timezone: str = "UTC"
    timezone_at: datetime | None = None
    goals: dict[str, GoalState] = {}
    active_goal: ActiveGoal | None = None
    streak: StreakState = Field(default_factory=StreakState)
    year_totals: dict[str, int] = {}

    @property
    def deleted_goals(self) -> set[str]:
        return {gid for gid, goal in self.goals.items() if goal.deleted}

    @property
    def total_minutes(self) -> int:
        return sum(self.year_totals.values())


class DayTotal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    t: int = 0
    g: dict[str, int] = {}


class YearDays(Stored):
    COLLECTION = "analytics_years"
    INDEXES = [IndexModel([("user_id", 1)], name="user")]

    user_id: str
    year: int
    days: dict[str, DayTotal] = {}


def year_doc_id(user_id: str, year: int) -> str:
    return f"{user_id}:{year}"


class LogFact(Stored):
    COLLECTION = "analytics_log_facts"
    INDEXES = [
        IndexModel([("user_id", 1), ("date", 1)], name="user_date"),
        IndexModel([("user_id", 1), ("goal_id", 1)], name="user_goal"),
    ]

    user_id: str
    goal_id: str
    date: str
    minutes: int
    version: int
    deleted: bool = False
    # Every date this log has been on: a redelivered event recomputes them all, so a
    # crash between the fact's write and the day totals' write heals.
    dates: list[str] = []


class TargetFact(Stored):
    COLLECTION = "analytics_targets"
    INDEXES = [
        IndexModel([("user_id", 1), ("goal_id", 1), ("week_start", 1)], name="user_goal_week"),
    ]

    user_id: str
    goal_id: str
    week_start: str
    target_minutes: int
    version: int
    deleted: bool = False


MODELS: tuple[type[Stored], ...] = (UserProjection, YearDays, LogFact, TargetFact)
