from datetime import date
from typing import Annotated

from momentum_libs.patch import NotNull
from momentum_libs.timestamps import Timestamp
from pydantic import BaseModel, ConfigDict, Field

from momentum_tracking.common import IsoDate
from momentum_tracking.goals.models import Goal

Title = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=2000)]


class GoalCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Run a marathon",
                    "description": "Spring race",
                    "target_date": "2026-10-11",
                }
            ]
        },
    )

    title: Title
    description: Description | None = None
    target_date: IsoDate | None = None


class GoalUpdate(BaseModel):
    """Only the fields given change; ``null`` clears ``description`` or ``target_date``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "Run a half marathon", "target_date": None}]},
    )

    title: Annotated[Title | None, NotNull] = None
    description: Description | None = None
    target_date: IsoDate | None = None


class GoalRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "665f1c2e8b1e4a3d9c0a1b3d",
                    "title": "Run a marathon",
                    "description": "Spring race",
                    "target_date": "2026-10-11",
                    "is_active": True,
                    "created_at": "2026-03-02T09:30:00Z",
                    "updated_at": "2026-03-02T09:30:00Z",
                }
            ]
        }
    )

    id: str
    title: str
    description: str | None
    target_date: date | None
    is_active: bool
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_document(cls, goal: Goal) -> "GoalRead":
        return cls(
            id=str(goal.id),
            title=goal.title,
            description=goal.description,
            target_date=date.fromisoformat(goal.target_date) if goal.target_date else None,
            is_active=goal.is_active,
            created_at=goal.created_at,
            updated_at=goal.updated_at,
        )
