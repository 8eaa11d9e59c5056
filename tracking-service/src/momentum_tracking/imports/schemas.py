from typing import Any

from pydantic import BaseModel


class KindCounts(BaseModel):
    goals: int
    weekly_targets: int
    daily_logs: int


class RowProblem(BaseModel):
    row: str
    detail: str


class ImportReport(BaseModel):
    format: str
    dry_run: bool
    created: KindCounts
    updated: KindCounts
    skipped: KindCounts
    problems: list[RowProblem]
    settings: dict[str, Any] | None
