from datetime import date, timedelta
from typing import Annotated

from momentum_libs.events import BreakKind
from momentum_libs.patch import NotNull
from momentum_libs.timestamps import Timestamp
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from momentum_tracking.breaks.models import Break
from momentum_tracking.common import IsoDate

MAX_SPAN = timedelta(days=90)
"""The longest a break may run: its end_date at most this many days after its start."""

Note = Annotated[str, Field(max_length=2000)]


def check_span(start: date, end: date) -> None:
    if end < start:
        raise ValueError("end_date must not be before start_date")
    if end - start > MAX_SPAN:
        raise ValueError("end_date must be at most 90 days after start_date")


class BreakCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "goal_id": None,
                    "start_date": "2026-08-03",
                    "end_date": "2026-08-16",
                    "kind": "vacation",
                    "note": "Two weeks by the sea",
                }
            ]
        },
    )

    goal_id: str | None = Field(None, description="The goal it protects; null: every goal")
    start_date: IsoDate
    end_date: IsoDate
    kind: BreakKind
    note: Note | None = None

    @field_validator("end_date")
    @classmethod
    def _span(cls, end: date, info: ValidationInfo) -> date:
        start = info.data.get("start_date")
        if start is not None:  # else start_date has its own error
            check_span(start, end)
        return end


class BreakUpdate(BaseModel):
    """Only the fields given change; ``null`` clears ``note``. A break's goal cannot change."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"end_date": "2026-08-20"}]}
    )

    start_date: Annotated[IsoDate | None, NotNull] = None
    end_date: Annotated[IsoDate | None, NotNull] = None
    kind: Annotated[BreakKind | None, NotNull] = None
    note: Note | None = None


class BreakRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "665f1c2e8b1e4a3d9c0a1b6a",
                    "goal_id": None,
                    "start_date": "2026-08-03",
                    "end_date": "2026-08-16",
                    "kind": "vacation",
                    "note": "Two weeks by the sea",
                    "created_at": "2026-07-20T09:30:00Z",
                    "updated_at": "2026-07-20T09:30:00Z",
                }
            ]
        }
    )

    id: str
    goal_id: str | None
    start_date: date
    end_date: date
    kind: BreakKind
    note: str | None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_document(cls, brk: Break) -> "BreakRead":
        return cls(
            id=str(brk.id),
            goal_id=brk.goal_id,
            start_date=date.fromisoformat(brk.start_date),
            end_date=date.fromisoformat(brk.end_date),
            kind=brk.kind,
            note=brk.note,
            created_at=brk.created_at,
            updated_at=brk.updated_at,
        )
