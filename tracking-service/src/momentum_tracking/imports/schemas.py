from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class KindCounts(BaseModel):
    goals: int
    weekly_targets: int
    daily_logs: int
    breaks: int


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
                    "created": {"goals": 1, "weekly_targets": 0, "daily_logs": 12, "breaks": 0},
                    "updated": {"goals": 0, "weekly_targets": 0, "daily_logs": 0, "breaks": 0},
                    "skipped": {"goals": 0, "weekly_targets": 0, "daily_logs": 3, "breaks": 0},
                    "problems": [{"row": "line 7", "detail": "minutes: Input should be > 0"}],
                    "settings": None,
                    "settings_status": "none",
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
    settings: dict[str, Any] | None = Field(
        description="The file's day settings (a Momentum export's), as checked"
    )
    settings_status: Literal["applying", "not_applied", "none"] = Field(
        description="applying: sent to the account, which applies them within moments "
        "(GET /users/me shows them); not_applied: a dry run, or they had a problem; "
        "none: the file has no settings"
    )
