from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response
from momentum_libs.conditional import IfMatchHeader
from momentum_libs.outbox import entity_tag
from momentum_libs.problems import problem_responses

from momentum_tracking.common import Cursor, Limit, Page
from momentum_tracking.deps import CurrentUser, Targets
from momentum_tracking.targets.schemas import TargetCreate, TargetRead, TargetUpdate

router = APIRouter(prefix="/weekly-targets", tags=["weekly targets"])


@router.post(
    "",
    operation_id="createWeeklyTarget",
    status_code=201,
    summary="Set a goal's target for one ISO week",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def create_target(
    body: TargetCreate, user: CurrentUser, targets: Targets, response: Response
) -> TargetRead:
    target = await targets.create(user.user_id, body)
    response.headers["ETag"] = entity_tag(target)
    return TargetRead.from_document(target)


@router.get(
    "",
    operation_id="listWeeklyTargets",
    summary="List weekly targets, latest week first",
    responses=problem_responses(401, 422, 503),
)
async def list_targets(
    user: CurrentUser,
    targets: Targets,
    goal_id: Annotated[str | None, Query(description="Only this goal's targets")] = None,
    week_from: Annotated[
        date | None, Query(alias="from", description="Earliest week_start (inclusive)")
    ] = None,
    week_to: Annotated[
        date | None, Query(alias="to", description="Latest week_start (inclusive)")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TargetRead]:
    page, next_cursor = await targets.list_page(
        user.user_id, goal_id, week_from, week_to, cursor, limit
    )
    return Page(items=[TargetRead.from_document(t) for t in page], next_cursor=next_cursor)


@router.get(
    "/{target_id}",
    operation_id="getWeeklyTarget",
    summary="Get a weekly target",
    responses=problem_responses(401, 404, 503),
)
async def get_target(
    target_id: str, user: CurrentUser, targets: Targets, response: Response
) -> TargetRead:
    target = await targets.get(user.user_id, target_id)
    response.headers["ETag"] = entity_tag(target)
    return TargetRead.from_document(target)


@router.put(
    "/{target_id}",
    operation_id="putWeeklyTarget",
    summary="Create a weekly target under the client's UUID, or replace its minutes and note",
    responses={
        201: {"model": TargetRead, "description": "Created under the client's id"},
        **problem_responses(401, 404, 409, 410, 422, 503),
    },
)
async def put_target(
    target_id: str,
    body: TargetCreate,
    user: CurrentUser,
    targets: Targets,
    if_match: IfMatchHeader,
    response: Response,
) -> TargetRead:
    doc, created = await targets.put(user.user_id, target_id, body, if_match)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = entity_tag(doc)
    return TargetRead.from_document(doc)


@router.patch(
    "/{target_id}",
    operation_id="updateWeeklyTarget",
    summary="Change a weekly target (only the fields given; null clears the note)",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def update_target(
    target_id: str,
    body: TargetUpdate,
    user: CurrentUser,
    targets: Targets,
    if_match: IfMatchHeader,
    response: Response,
) -> TargetRead:
    target = await targets.update(user.user_id, target_id, body, if_match)
    response.headers["ETag"] = entity_tag(target)
    return TargetRead.from_document(target)


@router.delete(
    "/{target_id}",
    operation_id="deleteWeeklyTarget",
    status_code=204,
    summary="Delete a weekly target",
    responses=problem_responses(401, 404, 409, 503),
)
async def delete_target(
    target_id: str, user: CurrentUser, targets: Targets, if_match: IfMatchHeader
) -> Response:
    await targets.delete(user.user_id, target_id, if_match)
    return Response(status_code=204)
