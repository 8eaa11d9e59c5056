from typing import Any

from pydantic import BaseModel, ConfigDict


class KindCounts(BaseModel):
    goals: int
    weekly_targets: int
    daily_logs: int


class RowProblem(BaseModel):
    row: str
    detail: str


class ImportReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "format": "csv",
                    "dry_run": False,
                    "created": {"goals": 1, "weekly_targets": 0, "daily_logs": 12},
                    "updated": {"goals": 0, "weekly_targets": 0, "daily_logs": 0},
                    "skipped": {"goals": 0, "weekly_targets": 0, "daily_logs": 3},
                    "problems": [{"row": "line 7", "detail": "minutes: Input should be > 0"}],
                    "settings": None,
                }
            ]
        }
    )

    format: str
    dry_run: bool
    created: KindCounts
    updated: KindCounts
    skipped: KindCounts
    problems: list[RowProblem]
    settings: dict[str, Any] | None
