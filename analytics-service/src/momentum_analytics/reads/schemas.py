"""Response bodies of the analytics endpoints, exactly as API.md defines them."""

import datetime as dt

from momentum_libs.timestamps import Timestamp
from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class _Fresh(_Out):
    """How fresh a report is (see reads/freshness.py); optional fields, so additive."""

    as_of: Timestamp | None = Field(
        None,
        description="When the newest event applied for this user occurred (null: none yet)",
    )
    pending: bool = Field(
        False,
        description="Whether published events (of any user) were still to be applied when "
        "this was read; false: every write whose event was published is counted",
    )


class ActiveGoalOut(_Out):
    id: str
    title: str


class Dashboard(_Fresh):
    active_goal: ActiveGoalOut | None
    week_start: dt.date
    week_end: dt.date
    weekly_target_minutes: int | None
    weekly_logged_minutes: int
    weekly_progress_percent: float | None
    current_streak: int
    longest_streak: int
    total_minutes: int
    total_hours: float


class DayMinutes(_Out):
    date: dt.date
    minutes: int


class WeeklySummary(_Fresh):
    week_start: dt.date
    week_end: dt.date
    goal_id: str | None
    target_minutes: int | None
    logged_minutes: int
    progress_percent: float | None
    active_days: int
    days: list[DayMinutes]


class Streak(_Fresh):
    current_streak: int
    longest_streak: int
    last_activity_date: dt.date | None


class HeatmapDay(_Out):
    date: dt.date
    minutes: int
    level: int


class Heatmap(_Fresh):
    from_: dt.date = Field(serialization_alias="from")
    to: dt.date
    max_minutes: int
    days: list[HeatmapDay]
