from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response
from momentum_libs.conditional import IfMatchHeader
from momentum_libs.outbox import entity_tag
from momentum_libs.problems import problem_responses

from momentum_tracking.breaks.schemas import BreakCreate, BreakRead, BreakUpdate
from momentum_tracking.common import Cursor, Limit, Page
from momentum_tracking.deps import Breaks, CurrentUser

router = APIRouter(prefix="/breaks", tags=["breaks"])


@router.post(
    "",
    operation_id="createBreak",
    status_code=201,
    summary="Declare a break for today or later days (one goal, or every goal)",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def create_break(
    body: BreakCreate, user: CurrentUser, breaks: Breaks, response: Response
) -> BreakRead:
    brk = await breaks.create(user.user_id, body)
    response.headers["ETag"] = entity_tag(brk)
    return BreakRead.from_document(brk)


@router.get(
    "",
    operation_id="listBreaks",
    summary="List breaks, latest start first",
    responses=problem_responses(401, 422, 503),
)
async def list_breaks(
    user: CurrentUser,
    breaks: Breaks,
    first: Annotated[
        date | None, Query(alias="from", description="Only breaks ending on or after this date")
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="Only breaks starting on or before this date")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[BreakRead]:
    page, next_cursor = await breaks.list_page(user.user_id, first, last, cursor, limit)
    return Page(items=[BreakRead.from_document(b) for b in page], next_cursor=next_cursor)


@router.get(
    "/{break_id}",
    operation_id="getBreak",
    summary="Get a break",
    responses=problem_responses(401, 404, 503),
)
async def get_break(
    break_id: str, user: CurrentUser, breaks: Breaks, response: Response
) -> BreakRead:
    brk = await breaks.get(user.user_id, break_id)
    response.headers["ETag"] = entity_tag(brk)
    return BreakRead.from_document(brk)


@router.patch(
    "/{break_id}",
    operation_id="updateBreak",
    summary="Change a break (a started one: only its end, down to yesterday; null clears the note)",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def update_break(
    break_id: str,
    body: BreakUpdate,
    user: CurrentUser,
    breaks: Breaks,
    if_match: IfMatchHeader,
    response: Response,
) -> BreakRead:
    brk = await breaks.update(user.user_id, break_id, body, if_match)
    response.headers["ETag"] = entity_tag(brk)
    return BreakRead.from_document(brk)


@router.delete(
    "/{break_id}",
    operation_id="deleteBreak",
    status_code=204,
    summary="Delete a break that has not started",
    responses=problem_responses(401, 404, 409, 503),
)
async def delete_break(
    break_id: str, user: CurrentUser, breaks: Breaks, if_match: IfMatchHeader
) -> Response:
    await breaks.delete(user.user_id, break_id, if_match)
    return Response(status_code=204)
