from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from momentum_libs.problems import problem_responses

from momentum_tracking.common import Cursor, Limit, Page
from momentum_tracking.deps import CurrentUser, Notifier, Settings
from momentum_tracking.logs import service
from momentum_tracking.logs.schemas import LogCreate, LogRead, LogUpdate

router = APIRouter(prefix="/daily-logs", tags=["daily logs"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe creation: the same key and body answer the first response "
        "again and store nothing new (remembered for at least 24 hours)",
    ),
]


@router.post(
    "",
    status_code=201,
    summary="Log minutes worked towards a goal on a date",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def create_log(
    body: LogCreate,
    user: CurrentUser,
    notify: Notifier,
    settings: Settings,
    idempotency_key: IdempotencyKey = None,
) -> LogRead:
    if idempotency_key is None:
        return LogRead.from_doc(await service.create(user.user_id, body, notify))
    return await service.create_idempotent(
        user.user_id,
        idempotency_key,
        body,
        notify,
        ttl_s=settings.idempotency_ttl_s,
        lease_s=settings.idempotency_lease_s,
    )


@router.get(
    "",
    summary="List daily logs, latest date first",
    responses=problem_responses(401, 422, 503),
)
async def list_logs(
    user: CurrentUser,
    date_from: Annotated[
        date | None, Query(alias="from", description="Earliest date (inclusive)")
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="Latest date (inclusive)")
    ] = None,
    goal_id: Annotated[str | None, Query(description="Only this goal's logs")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[LogRead]:
    logs, next_cursor = await service.list_page(
        user.user_id, goal_id, date_from, date_to, cursor, limit
    )
    return Page(items=[LogRead.from_doc(log) for log in logs], next_cursor=next_cursor)


@router.get("/{log_id}", summary="Get a daily log", responses=problem_responses(401, 404, 503))
async def get_log(log_id: str, user: CurrentUser) -> LogRead:
    return LogRead.from_doc(await service.get(user.user_id, log_id))


@router.patch(
    "/{log_id}",
    summary="Change a daily log (move it to another date or goal; null clears the note)",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def update_log(log_id: str, body: LogUpdate, user: CurrentUser, notify: Notifier) -> LogRead:
    return LogRead.from_doc(await service.update(user.user_id, log_id, body, notify))


@router.delete(
    "/{log_id}",
    status_code=204,
    summary="Delete a daily log",
    responses=problem_responses(401, 404, 409, 503),
)
async def delete_log(log_id: str, user: CurrentUser, notify: Notifier) -> Response:
    await service.delete(user.user_id, log_id, notify)
    return Response(status_code=204)
