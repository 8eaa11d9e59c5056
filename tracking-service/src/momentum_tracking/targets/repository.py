"""All database access for weekly targets."""

from typing import Any

from bson import ObjectId
from momentum_libs.events import Envelope
from momentum_libs.outbox import OutboxRepository

from momentum_tracking.common import keyset_after
from momentum_tracking.targets.models import WeeklyTarget


async def insert(target: WeeklyTarget, event: Envelope) -> None:
    """Insert; raises DuplicateKeyError when the goal already has a target that week."""
    await OutboxRepository(WeeklyTarget).insert(target, event)


async def get(user_id: str, target_id: ObjectId) -> WeeklyTarget | None:
    return await WeeklyTarget.find_one({"_id": target_id, "user_id": user_id, "deleted": False})


async def list_page(
    user_id: str,
    goal_id: str | None,
    week_from: str | None,
    week_to: str | None,
    after: tuple[str, ObjectId] | None,
    limit: int,
) -> list[WeeklyTarget]:
    query: dict[str, Any] = {"user_id": user_id, "deleted": False}
    if goal_id is not None:
        query["goal_id"] = goal_id
    week: dict[str, str] = {}
    if week_from is not None:
        week["$gte"] = week_from
    if week_to is not None:
        week["$lte"] = week_to
    if week:
        query["week_start"] = week
    if after is not None:
        query.update(keyset_after("week_start", after[0], after[1]))
    return await WeeklyTarget.find(query).sort("-week_start", "-_id").limit(limit).to_list()


async def some_of_user(user_id: str, goal_id: str | None, limit: int) -> list[WeeklyTarget]:
    query: dict[str, Any] = {"user_id": user_id, "deleted": False}
    if goal_id is not None:
        query["goal_id"] = goal_id
    return await WeeklyTarget.find(query).limit(limit).to_list()
