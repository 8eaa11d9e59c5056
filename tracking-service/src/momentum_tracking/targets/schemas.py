from datetime import date
from typing import Annotated

from momentum_libs.patch import NotNull
from momentum_libs.timestamps import Timestamp
from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

from momentum_tracking.common import IsoDate
from momentum_tracking.targets.models import WeeklyTarget

Minutes = Annotated[int, Strict(), Field(ge=1, le=10080)]
Note = Annotated[str, Field(max_length=2000)]


class TargetCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "goal_id": "665f1c2e8b1e4a3d9c0a1b3d",
                    "week_start": "2026-03-02",
                    "target_minutes": 240,
                    "note": "Four runs",
                }
            ]
        },
    )

    goal_id: str
    week_start: IsoDate
    target_minutes: Minutes
    note: Note | None = None

    @field_validator("week_start")
    @classmethod
    def _monday(cls, value: date) -> date:
        if value.isoweekday() != 1:
            raise ValueError("week_start must be a Monday (ISO weeks)")
        return value


class TargetUpdate(BaseModel):
    """Only the fields given change; ``null`` clears ``note``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"target_minutes": 300, "note": None}]}
    )

    target_minutes: Annotated[Minutes | None, NotNull] = None
    note: Note | None = None


class TargetRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "665f1c2e8b1e4a3d9c0a1b4e",
                    "goal_id": "665f1c2e8b1e4a3d9c0a1b3d",
                    "week_start": "2026-03-02",
                    "target_minutes": 240,
                    "note": "Four runs",
                    "created_at": "2026-03-02T09:30:00Z",
                    "updated_at": "2026-03-02T09:30:00Z",
                }
            ]
        }
    )

    id: str
    goal_id: str
    week_start: date
    target_minutes: int
    note: str | None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_document(cls, target: WeeklyTarget) -> "TargetRead":
        return cls(
            id=str(target.id),
            goal_id=target.goal_id,
            week_start=date.fromisoformat(target.week_start),
            target_minutes=target.target_minutes,
            note=target.note,
            created_at=target.created_at,
            updated_at=target.updated_at,
        )
