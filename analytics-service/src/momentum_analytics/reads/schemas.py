"""Response bodies of the analytics endpoints, exactly as docs/api.md defines them."""

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "active_goal": {"id": "665f1c2e8b1e4a3d9c0a1b3d", "title": "Run a marathon"},
                    "week_start": "2026-03-02",
                    "week_end": "2026-03-08",
                    "weekly_target_minutes": 240,
                    "weekly_logged_minutes": 90,
                    "weekly_progress_percent": 37.5,
                    "current_streak": 3,
                    "longest_streak": 12,
                    "total_minutes": 1260,
                    "total_hours": 21.0,
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "week_start": "2026-03-02",
                    "week_end": "2026-03-08",
                    "goal_id": "665f1c2e8b1e4a3d9c0a1b3d",
                    "target_minutes": 240,
                    "logged_minutes": 90,
                    "progress_percent": 37.5,
                    "active_days": 2,
                    "days": [
                        {"date": "2026-03-02", "minutes": 45},
                        {"date": "2026-03-03", "minutes": 45},
                    ],
                }
            ]
        }
    )

    week_start: dt.date
    week_end: dt.date
    goal_id: str | None
    target_minutes: int | None
    logged_minutes: int
    progress_percent: float | None
    active_days: int
    days: list[DayMinutes]


class Streak(_Fresh):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"current_streak": 3, "longest_streak": 12, "last_activity_date": "2026-03-03"}
            ]
        }
    )

    current_streak: int
    longest_streak: int
    last_activity_date: dt.date | None


class HeatmapDay(_Out):
    date: dt.date
    minutes: int
    level: int


class Heatmap(_Fresh):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": "2026-03-02",
                    "to": "2026-03-04",
                    "max_minutes": 45,
                    "days": [
                        {"date": "2026-03-02", "minutes": 45, "level": 4},
                        {"date": "2026-03-03", "minutes": 20, "level": 2},
                        {"date": "2026-03-04", "minutes": 0, "level": 0},
                    ],
                }
            ]
        }
    )

    from_: dt.date = Field(serialization_alias="from")
    to: dt.date
    max_minutes: int
    days: list[HeatmapDay]
