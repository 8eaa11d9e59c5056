from typing import Annotated

from fastapi import APIRouter, Query, Response
from momentum_libs.conditional import IfMatchHeader
from momentum_libs.outbox import entity_tag
from momentum_libs.problems import problem_responses

from momentum_tracking.common import Cursor, Limit, Page
from momentum_tracking.deps import CurrentUser, Erasure, Goals
from momentum_tracking.goals.schemas import GoalCreate, GoalRead, GoalUpdate

router = APIRouter(prefix="/goals", tags=["goals"])


@router.post(
    "",
    operation_id="createGoal",
    status_code=201,
    summary="Create a goal (a user's first goal is created active)",
    responses=problem_responses(401, 422, 503),
)
async def create_goal(
    body: GoalCreate, user: CurrentUser, goals: Goals, response: Response
) -> GoalRead:
    goal = await goals.create(user.user_id, body)
    response.headers["ETag"] = entity_tag(goal)
    return GoalRead.from_document(goal)


@router.get(
    "",
    operation_id="listGoals",
    summary="List goals, newest first",
    responses=problem_responses(401, 422, 503),
)
async def list_goals(
    user: CurrentUser,
    goals: Goals,
    is_active: Annotated[bool | None, Query(description="Only active (or inactive) goals")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[GoalRead]:
    page, next_cursor = await goals.list_page(user.user_id, is_active, cursor, limit)
    return Page(items=[GoalRead.from_document(g) for g in page], next_cursor=next_cursor)


@router.get(
    "/{goal_id}",
    operation_id="getGoal",
    summary="Get a goal",
    responses=problem_responses(401, 404, 503),
)
async def get_goal(goal_id: str, user: CurrentUser, goals: Goals, response: Response) -> GoalRead:
    goal = await goals.get(user.user_id, goal_id)
    response.headers["ETag"] = entity_tag(goal)
    return GoalRead.from_document(goal)


@router.put(
    "/{goal_id}",
    operation_id="putGoal",
    summary="Create a goal under the client's UUID, or replace it (idempotent)",
    responses={
        201: {"model": GoalRead, "description": "Created under the client's id"},
        **problem_responses(401, 404, 409, 410, 422, 503),
    },
)
async def put_goal(
    goal_id: str,
    body: GoalCreate,
    user: CurrentUser,
    goals: Goals,
    if_match: IfMatchHeader,
    response: Response,
) -> GoalRead:
    doc, created = await goals.put(user.user_id, goal_id, body, if_match)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = entity_tag(doc)
    return GoalRead.from_document(doc)


@router.patch(
    "/{goal_id}",
    operation_id="updateGoal",
    summary="Change a goal (only the fields given; null clears an optional one)",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def update_goal(
    goal_id: str,
    body: GoalUpdate,
    user: CurrentUser,
    goals: Goals,
    if_match: IfMatchHeader,
    response: Response,
) -> GoalRead:
    goal = await goals.update(user.user_id, goal_id, body, if_match)
    response.headers["ETag"] = entity_tag(goal)
    return GoalRead.from_document(goal)


@router.delete(
    "/{goal_id}",
    operation_id="deleteGoal",
    status_code=204,
    summary="Delete a goal with its weekly targets and daily logs",
    responses=problem_responses(401, 404, 409, 503),
)
async def delete_goal(
    goal_id: str, user: CurrentUser, erasure: Erasure, if_match: IfMatchHeader
) -> Response:
    await erasure.erase_goal(user.user_id, goal_id, if_match)
    return Response(status_code=204)


@router.patch(
    "/{goal_id}/activate",
    operation_id="activateGoal",
    summary="Make this the one active goal (the previous one is deactivated)",
    responses=problem_responses(401, 404, 409, 503),
)
async def activate_goal(
    goal_id: str, user: CurrentUser, goals: Goals, response: Response
) -> GoalRead:
    goal = await goals.activate(user.user_id, goal_id)
    response.headers["ETag"] = entity_tag(goal)
    return GoalRead.from_document(goal)
