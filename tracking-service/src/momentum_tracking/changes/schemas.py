"""``GET /changes``: items, the token, and the token's own (opaque) content."""

from momentum_libs.timestamps import Timestamp
from pydantic import BaseModel, ConfigDict, Field

from momentum_tracking.breaks.schemas import BreakRead
from momentum_tracking.changes.models import ChangeOp, ChangeType
from momentum_tracking.goals.schemas import GoalRead
from momentum_tracking.logs.schemas import LogRead
from momentum_tracking.targets.schemas import TargetRead


class ChangeItem(BaseModel):
    type: ChangeType
    id: str
    op: ChangeOp
    version: int = Field(description="Grows with every change of the resource")
    changed_at: Timestamp
    data: GoalRead | TargetRead | LogRead | BreakRead | None = Field(
        description="The resource as it is now; null for a delete"
    )


class ChangeFeed(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "type": "daily_log",
                            "id": "0b6f3c1e-8a4d-4c55-9d7e-2f1a6b3c4d5e",
                            "op": "upsert",
                            "version": 2,
                            "changed_at": "2026-03-02T09:30:00Z",
                            "data": {
                                "id": "0b6f3c1e-8a4d-4c55-9d7e-2f1a6b3c4d5e",
                                "goal_id": "665f1c2e8b1e4a3d9c0a1b3d",
                                "date": "2026-03-02",
                                "minutes": 45,
                                "note": None,
                                "created_at": "2026-03-02T09:00:00Z",
                                "updated_at": "2026-03-02T09:30:00Z",
                            },
                        },
                        {
                            "type": "weekly_target",
                            "id": "665f1c2e8b1e4a3d9c0a1b4e",
                            "op": "delete",
                            "version": 3,
                            "changed_at": "2026-03-02T09:31:00Z",
                            "data": None,
                        },
                    ],
                    "next_token": "eyJzZXEiOjQyLCJpc3N1ZWQiOjE3OTY0MzEwMDB9",
                    "has_more": False,
                }
            ]
        }
    )

    items: list[ChangeItem]
    next_token: str = Field(description="Pass it as since= to get what changed after")
    has_more: bool = Field(description="True: ask again at once with next_token")


class SyncToken(BaseModel):
    """What a token holds. ``seq``: every change up to it is known. Or, during the first,
    full read: ``head`` (where it continues after) and ``after``, the (type index, id) of
    the last item read. ``issued`` (Unix seconds) tells an expired one."""

    model_config = ConfigDict(extra="forbid")

    seq: int | None = Field(None, ge=0)
    head: int | None = Field(None, ge=0)
    after: tuple[int, str] | None = None
    issued: int
