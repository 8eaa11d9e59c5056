from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from momentum_libs.conditional import IfMatchHeader
from momentum_libs.outbox import entity_tag
from momentum_libs.problems import problem_responses

from momentum_tracking.common import Cursor, Limit, Page
from momentum_tracking.deps import CurrentUser, Logs
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
    operation_id="createDailyLog",
    status_code=201,
    summary="Log minutes worked towards a goal on a date",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def create_log(
    body: LogCreate,
    user: CurrentUser,
    logs: Logs,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> LogRead:
    if idempotency_key is None:
        log = await logs.create(user.user_id, body)
        response.headers["ETag"] = entity_tag(log)
        return LogRead.from_document(log)
    first, written = await logs.create_idempotent(user.user_id, idempotency_key, body)
    if written is None:
        # No ETag on a replay: it repeats the first answer, and the log may have changed since.
        response.headers["Idempotent-Replayed"] = "true"
    else:
        response.headers["ETag"] = entity_tag(written)
    return first


@router.get(
    "",
    operation_id="listDailyLogs",
    summary="List daily logs, latest date first",
    responses=problem_responses(401, 422, 503),
)
async def list_logs(
    user: CurrentUser,
    logs: Logs,
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
    page, next_cursor = await logs.list_page(
        user.user_id, goal_id, date_from, date_to, cursor, limit
    )
    return Page(items=[LogRead.from_document(log) for log in page], next_cursor=next_cursor)


@router.get(
    "/{log_id}",
    operation_id="getDailyLog",
    summary="Get a daily log",
    responses=problem_responses(401, 404, 503),
)
async def get_log(log_id: str, user: CurrentUser, logs: Logs, response: Response) -> LogRead:
    log = await logs.get(user.user_id, log_id)
    response.headers["ETag"] = entity_tag(log)
    return LogRead.from_document(log)


@router.put(
    "/{log_id}",
    operation_id="putDailyLog",
    summary="Create a daily log under the client's UUID, or replace it (idempotent)",
    responses={
        201: {"model": LogRead, "description": "Created under the client's id"},
        **problem_responses(401, 404, 409, 410, 422, 503),
    },
)
async def put_log(
    log_id: str,
    body: LogCreate,
    user: CurrentUser,
    logs: Logs,
    if_match: IfMatchHeader,
    response: Response,
) -> LogRead:
    doc, created = await logs.put(user.user_id, log_id, body, if_match)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = entity_tag(doc)
    return LogRead.from_document(doc)


@router.patch(
    "/{log_id}",
    operation_id="updateDailyLog",
    summary="Change a daily log (move it to another date or goal; null clears the note)",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def update_log(
    log_id: str,
    body: LogUpdate,
    user: CurrentUser,
    logs: Logs,
    if_match: IfMatchHeader,
    response: Response,
) -> LogRead:
    log = await logs.update(user.user_id, log_id, body, if_match)
    response.headers["ETag"] = entity_tag(log)
    return LogRead.from_document(log)


@router.delete(
    "/{log_id}",
    operation_id="deleteDailyLog",
    status_code=204,
    summary="Delete a daily log",
    responses=problem_responses(401, 404, 409, 503),
)
async def delete_log(
    log_id: str, user: CurrentUser, logs: Logs, if_match: IfMatchHeader
) -> Response:
    await logs.delete(user.user_id, log_id, if_match)
    return Response(status_code=204)
