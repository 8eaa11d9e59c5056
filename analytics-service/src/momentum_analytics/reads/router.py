"""``/analytics``: thin routes over :class:`ReadService`."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from momentum_libs.deps import CurrentUser
from momentum_libs.problems import problem_responses

from momentum_analytics.deps import Reads
from momentum_analytics.reads.schemas import Dashboard, Heatmap, Streak, WeeklySummary

router = APIRouter(prefix="/analytics", tags=["analytics"])


@router.get(
    "/dashboard",
    operation_id="getDashboard",
    summary="Active goal's week, streaks and all-time totals",
    responses=problem_responses(401, 503),
)
async def dashboard(user: CurrentUser, service: Reads) -> Dashboard:
    return await service.dashboard(user.user_id)


@router.get(
    "/weekly-summary",
    operation_id="getWeeklySummary",
    summary="One week of one goal (default: the current week and the active goal)",
    responses=problem_responses(401, 404, 422, 503),
)
async def weekly_summary(
    user: CurrentUser,
    service: Reads,
    week_start: Annotated[date | None, Query(description="A Monday; default this week")] = None,
    goal_id: Annotated[str | None, Query(description="Default: the active goal")] = None,
) -> WeeklySummary:
    return await service.weekly_summary(user.user_id, week_start, goal_id)


@router.get(
    "/streak",
    operation_id="getStreak",
    summary="Current and longest streak of active days",
    responses=problem_responses(401, 503),
)
async def streak(user: CurrentUser, service: Reads) -> Streak:
    return await service.streak(user.user_id)


@router.get(
    "/heatmap",
    operation_id="getHeatmap",
    summary="Minutes per day with levels 0-4 (default: the 365 days ending today)",
    responses=problem_responses(401, 422, 503),
)
async def heatmap(
    user: CurrentUser,
    service: Reads,
    from_: Annotated[date | None, Query(alias="from", description="First day")] = None,
    to: Annotated[date | None, Query(description="Last day (at most 1098 days in all)")] = None,
) -> Heatmap:
    return await service.heatmap(user.user_id, from_, to)
