"""``/analytics``: thin routes over :class:`ReadService`."""

from datetime import date
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Query
from momentum_libs.deps import CurrentUser
from momentum_libs.problems import problem_responses
from momentum_libs.streak_rules import RUNS_KEPT

from momentum_analytics.deps import Fresh, Reads
from momentum_analytics.reads.freshness import Staleness
from momentum_analytics.reads.schemas import (
    Dashboard,
    Heatmap,
    Streak,
    StreakRuns,
    WeeklySummary,
)

router = APIRouter(prefix="/analytics", tags=["analytics"])

R = TypeVar("R", Dashboard, WeeklySummary, Streak, StreakRuns, Heatmap)


def stamped(report: R, staleness: Staleness) -> R:
    return report.model_copy(update={"as_of": staleness.as_of, "pending": staleness.pending})


@router.get(
    "/dashboard",
    operation_id="getDashboard",
    summary="Active goal's week, streaks and all-time totals",
    responses=problem_responses(401, 503),
)
async def dashboard(user: CurrentUser, service: Reads, freshness: Fresh) -> Dashboard:
    staleness = await freshness.of(user.user_id)  # first: see Freshness.of
    return stamped(await service.dashboard(user.user_id), staleness)


@router.get(
    "/weekly-summary",
    operation_id="getWeeklySummary",
    summary="One week of one goal (default: the current week and the active goal)",
    responses=problem_responses(401, 404, 422, 503),
)
async def weekly_summary(
    user: CurrentUser,
    service: Reads,
    freshness: Fresh,
    week_start: Annotated[date | None, Query(description="A Monday; default this week")] = None,
    goal_id: Annotated[str | None, Query(description="Default: the active goal")] = None,
) -> WeeklySummary:
    staleness = await freshness.of(user.user_id)
    return stamped(await service.weekly_summary(user.user_id, week_start, goal_id), staleness)


@router.get(
    "/streak",
    operation_id="getStreak",
    summary="Current and longest streak, today's status, freezes (all goals, or one goal)",
    responses=problem_responses(401, 404, 503),
)
async def streak(
    user: CurrentUser,
    service: Reads,
    freshness: Fresh,
    goal_id: Annotated[
        str | None, Query(description="That goal's own streak (default: all goals together)")
    ] = None,
) -> Streak:
    staleness = await freshness.of(user.user_id)
    return stamped(await service.streak(user.user_id, goal_id), staleness)


@router.get(
    "/streaks",
    operation_id="listStreaks",
    summary="The streak runs, the longest or the latest first",
    responses=problem_responses(401, 404, 422, 503),
)
async def streaks(
    user: CurrentUser,
    service: Reads,
    freshness: Fresh,
    goal_id: Annotated[
        str | None, Query(description="That goal's runs (default: all goals together)")
    ] = None,
    order: Annotated[
        Literal["longest", "recent"], Query(description="longest: by length; recent: by end")
    ] = "recent",
    limit: Annotated[int, Query(ge=1, le=RUNS_KEPT, description="Runs listed")] = 10,
) -> StreakRuns:
    staleness = await freshness.of(user.user_id)
    return stamped(await service.streaks(user.user_id, goal_id, order, limit), staleness)


@router.get(
    "/heatmap",
    operation_id="getHeatmap",
    summary="Minutes per day with levels 0-4 (default: the 365 days ending today)",
    responses=problem_responses(401, 422, 503),
)
async def heatmap(
    user: CurrentUser,
    service: Reads,
    freshness: Fresh,
    from_: Annotated[date | None, Query(alias="from", description="First day")] = None,
    to: Annotated[date | None, Query(description="Last day (at most 1098 days in all)")] = None,
) -> Heatmap:
    staleness = await freshness.of(user.user_id)
    return stamped(await service.heatmap(user.user_id, from_, to), staleness)
