from typing import Annotated, get_args

from fastapi import APIRouter, Query
from momentum_libs.problems import problem_responses, validation_problem

from momentum_tracking.changes.models import ChangeType
from momentum_tracking.changes.schemas import ChangeFeed
from momentum_tracking.common import Limit
from momentum_tracking.deps import Changes, CurrentUser

router = APIRouter(prefix="/changes", tags=["sync"])

KNOWN_TYPES: tuple[ChangeType, ...] = get_args(ChangeType)


def parse_types(value: str | None) -> list[ChangeType]:
    """``goal,daily_log`` → those types (none given: all); 422 for an unknown one."""
    if not value:
        return []
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(names) - set(KNOWN_TYPES))
    if unknown:
        raise validation_problem(
            ["query", "types"], f"Unknown type {unknown[0]!r}; one of {', '.join(KNOWN_TYPES)}."
        )
    return [t for t in KNOWN_TYPES if t in names]


@router.get(
    "",
    operation_id="listChanges",
    summary="What changed in the user's goals, targets, logs and breaks since a token",
    responses=problem_responses(401, 410, 422, 503),
)
async def list_changes(
    user: CurrentUser,
    changes: Changes,
    since: Annotated[
        str | None,
        Query(
            max_length=512,
            description="The previous answer's next_token; omit for a first, full sync",
        ),
    ] = None,
    types: Annotated[
        str | None,
        Query(description="Comma-separated: goal, weekly_target, daily_log, break (default all)"),
    ] = None,
    limit: Limit = 50,
) -> ChangeFeed:
    return await changes.feed(user.user_id, since, parse_types(types), limit)
