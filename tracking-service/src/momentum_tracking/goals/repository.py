"""All database access for goals."""

from datetime import datetime

from bson import ObjectId
from momentum_libs.events import Envelope
from momentum_libs.outbox import OutboxRepository

from momentum_tracking.common import keyset_after
from momentum_tracking.goals.models import Goal


async def insert(goal: Goal, event: Envelope) -> None:
    """Insert a new goal; raises DuplicateKeyError when the user already has an active one."""
    await OutboxRepository(Goal).insert(goal, event)


async def get(user_id: str, goal_id: ObjectId) -> Goal | None:
    return await Goal.find_one({"_id": goal_id, "user_id": user_id, "deleted": False})


async def get_active(user_id: str) -> Goal | None:
    return await Goal.find_one({"active_slot": user_id, "deleted": False})


async def list_page(
    user_id: str, is_active: bool | None, after: tuple[datetime, ObjectId] | None, limit: int
) -> list[Goal]:
    query: dict[str, object] = {"user_id": user_id, "deleted": False}
    if is_active is not None:
        query["is_active"] = is_active
    if after is not None:
        query.update(keyset_after("created_at", after[0], after[1]))
    return await Goal.find(query).sort("-created_at", "-_id").limit(limit).to_list()


async def some_of_user(user_id: str, limit: int) -> list[Goal]:
    """Up to ``limit`` of the user's live goals (for erasing them all, batch by batch)."""
    return await Goal.find({"user_id": user_id, "deleted": False}).limit(limit).to_list()
