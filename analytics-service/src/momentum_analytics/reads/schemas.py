"""Response bodies of the analytics endpoints, exactly as docs/api.md defines them."""

import datetime as dt
from typing import Literal

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


class StreakToday(_Out):
    date: dt.date = Field(
        description="The user's local today (their timezone and day start); for 36 hours "
        "after a change of those, the today of the settings before it when that one keeps "
        "the streak and the new one would not"
    )
    status: Literal["done", "pending", "rest", "break"] = Field(
        description="done: active; rest: a rest weekday; break: on a break; pending: "
        "not active yet (it is never frozen before it ends)"
    )


class Freezes(_Out):
    available: int = Field(description="Freezes held: each covers one past missed day")
    max: int = Field(description="The most that can be held")
    next_in_days: int | None = Field(
        description="Active days until the next one is earned (null: max held)"
    )


class Streak(_Fresh):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "current_streak": 3,
                    "longest_streak": 12,
                    "last_activity_date": "2026-03-03",
                    "goal_id": None,
                    "today": {"date": "2026-03-04", "status": "pending"},
                    "at_risk": True,
                    "expires_at": "2026-03-04T23:00:00Z",
                    "freezes": {"available": 0, "max": 2, "next_in_days": 4},
                }
            ]
        }
    )

    current_streak: int
    longest_streak: int
    last_activity_date: dt.date | None
    goal_id: str | None = Field(None, description="The goal whose streak this is (null: all)")
    today: StreakToday
    at_risk: bool = Field(
        description="The streak is > 0 and ends when today ends unless today becomes active"
    )
    expires_at: Timestamp | None = Field(
        description="When the streak ends if nothing more is logged (rest days, breaks and "
        "held freezes ahead counted); null when the streak is 0 or nothing ahead ends it"
    )
    freezes: Freezes


class StreakRun(_Out):
    start: dt.date = Field(description="Its first active day")
    end: dt.date = Field(description="Its last active day")
    length: int = Field(description="Its active days (rest, break and frozen days not counted)")


class StreakRuns(_Fresh):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [{"start": "2026-02-01", "end": "2026-02-09", "length": 8}],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[StreakRun]
    next_cursor: None = Field(
        None, description="Always null: every run kept fits one page (limit at most 50)"
    )


HeatmapState = Literal[
    "active", "skipped", "rest", "break", "frozen", "missed", "pending", "future", "none"
]


class HeatmapDay(_Out):
    date: dt.date
    minutes: int
    level: int
    state: HeatmapState = Field(
        description="active, skipped (a date a move east across the date line jumped "
        "over), rest, break, frozen, missed, pending (today, not active, not a rest or break "
        "day), future (after the streak's today), or none (before the first active day)"
    )


class Heatmap(_Fresh):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": "2026-03-02",
                    "to": "2026-03-04",
                    "max_minutes": 45,
                    "days": [
                        {"date": "2026-03-02", "minutes": 45, "level": 4, "state": "active"},
                        {"date": "2026-03-03", "minutes": 20, "level": 2, "state": "active"},
                        {"date": "2026-03-04", "minutes": 0, "level": 0, "state": "pending"},
                    ],
                }
            ]
        }
    )

    from_: dt.date = Field(serialization_alias="from")
    to: dt.date
    max_minutes: int
    days: list[HeatmapDay]
