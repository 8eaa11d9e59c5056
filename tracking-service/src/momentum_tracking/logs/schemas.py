import datetime as dt
from typing import Annotated

from momentum_libs.patch import NotNull
from momentum_libs.timestamps import Timestamp
from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

from momentum_tracking.common import IsoDate
from momentum_tracking.logs.models import DailyLog

Minutes = Annotated[int, Strict(), Field(ge=1, le=1440)]
Note = Annotated[str, Field(max_length=2000)]
EARLIEST = dt.date(2000, 1, 1)


def check_log_date(value: dt.date) -> dt.date:
    """A log's date: not before 2000-01-01. (Its latest date depends on the user's local
    today: LogService checks it.)"""
    if value < EARLIEST:
        raise ValueError("date must be 2000-01-01 or later")
    return value


class LogCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "goal_id": "665f1c2e8b1e4a3d9c0a1b3d",
                    "date": "2026-03-02",
                    "minutes": 45,
                    "note": "Easy 8 km",
                }
            ]
        },
    )

    goal_id: str
    date: IsoDate
    minutes: Minutes
    note: Note | None = None

    @field_validator("date")
    @classmethod
    def _date_bounds(cls, value: dt.date) -> dt.date:
        return check_log_date(value)


class LogUpdate(BaseModel):
    """Only the fields given change; ``null`` clears ``note``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"minutes": 50, "note": None}]}
    )

    goal_id: Annotated[str | None, NotNull] = None
    date: Annotated[IsoDate | None, NotNull] = None
    minutes: Annotated[Minutes | None, NotNull] = None
    note: Note | None = None

    @field_validator("date")
    @classmethod
    def _date_bounds(cls, value: dt.date | None) -> dt.date | None:
        return None if value is None else check_log_date(value)


class LogRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "665f1c2e8b1e4a3d9c0a1b5f",
                    "goal_id": "665f1c2e8b1e4a3d9c0a1b3d",
                    "date": "2026-03-02",
                    "minutes": 45,
                    "note": "Easy 8 km",
                    "created_at": "2026-03-02T09:30:00Z",
                    "updated_at": "2026-03-02T09:30:00Z",
                }
            ]
        }
    )

    id: str
    goal_id: str
    date: dt.date
    minutes: int
    note: str | None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_document(cls, log: DailyLog) -> "LogRead":
        return cls(
            id=str(log.id),
            goal_id=log.goal_id,
            date=dt.date.fromisoformat(log.date),
            minutes=log.minutes,
            note=log.note,
            created_at=log.created_at,
            updated_at=log.updated_at,
        )
