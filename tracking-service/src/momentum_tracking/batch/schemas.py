"""``POST /batch``: writes of goals, targets and logs an offline client queued, in order."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_OPS = 200

BatchType = Literal["goal", "weekly_target", "daily_log"]


class BatchOp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["put", "patch", "delete"]
    type: BatchType
    id: str = Field(min_length=1, max_length=64)
    body: dict[str, Any] | None = Field(
        None, description="put: the whole resource, patch: the fields to change, delete: none"
    )
    if_match: str | None = Field(
        None, max_length=512, description="As the If-Match header of the single request"
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ops": [
                        {
                            "op": "put",
                            "type": "daily_log",
                            "id": "0b6f3c1e-8a4d-4c55-9d7e-2f1a6b3c4d5e",
                            "body": {"goal_id": "665f1c2e8b1e4a3d9c0a1b3d", "date": "2026-03-02",
                                     "minutes": 45},
                        },
                        {"op": "delete", "type": "weekly_target",
                         "id": "665f1c2e8b1e4a3d9c0a1b4e"},
                    ]
                }
            ]
        },
    )  # fmt: skip

    ops: list[BatchOp] = Field(min_length=1, max_length=MAX_OPS)


class BatchResult(BaseModel):
    index: int
    status: int = Field(description="What the single request would have answered")
    etag: str | None = None
    body: dict[str, Any] | None = Field(None, description="The resource after a put or patch")
    problem: dict[str, Any] | None = Field(None, description="The problem details of a failure")


class BatchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"index": 0, "status": 201,
                         "etag": '"0b6f3c1e-8a4d-4c55-9d7e-2f1a6b3c4d5e.1"',
                         "body": {"id": "0b6f3c1e-8a4d-4c55-9d7e-2f1a6b3c4d5e",
                                  "goal_id": "665f1c2e8b1e4a3d9c0a1b3d", "date": "2026-03-02",
                                  "minutes": 45, "note": None,
                                  "created_at": "2026-03-02T09:30:00Z",
                                  "updated_at": "2026-03-02T09:30:00Z"}},
                        {"index": 1, "status": 404,
                         "problem": {"type": "https://momentum.example/problems/not-found",
                                     "title": "Not Found", "status": 404,
                                     "detail": "Weekly target not found."}},
                    ]
                }
            ]
        }
    )  # fmt: skip

    results: list[BatchResult]
