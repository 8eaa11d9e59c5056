"""Rules for goals: one active goal per user, events for every change, cascading delete."""

from datetime import datetime
from typing import Any, cast

from bson import ObjectId
from momentum_libs.events import Envelope, EventType, GoalDeletedPayload, GoalPayload
from momentum_libs.problems import ProblemError, validation_problem
from momentum_libs.timestamps import as_utc
from pymongo.errors import DuplicateKeyError

from momentum_tracking.common import (
    MAX_WRITE_ATTEMPTS,
    cut_page,
    decode_cursor,
    iso_date,
    not_found,
    now,
    parse_object_id,
)
from momentum_tracking.goals import repository
from momentum_tracking.goals.models import Goal
from momentum_tracking.goals.schemas import GoalCreate, GoalUpdate
from momentum_tracking.logs import service as logs_service
from momentum_tracking.store import (
    Change,
    Notify,
    apply_change,
    backoff,
    change_or_404,
    change_with_retry,
)
from momentum_tracking.targets import service as targets_service

CURSOR_KIND = "goals"


def goal_event(type_: EventType, goal: Goal, version: int, **changes: Any) -> Envelope:
    state = goal.model_copy(update=changes)
    return Envelope.create(
        type_,
        goal.user_id,
        GoalPayload(
            goal_id=str(goal.id),
            title=state.title,
            is_active=state.is_active,
            version=version,
            activated_at=state.activated_at,
        ),
    )


async def get(user_id: str, goal_id: str) -> Goal:
    oid = parse_object_id(goal_id)
    goal = None if oid is None else await repository.get(user_id, oid)
    if goal is None:
        raise not_found("Goal")
    return goal


async def create(user_id: str, data: GoalCreate, notify: Notify) -> Goal:
    """A user's goal is created active when they have no active goal (their first one)."""
    goal_id = ObjectId()
    t = now()
    for active in (True, False):
        goal = Goal(
            id=goal_id,
            user_id=user_id,
            title=data.title,
            description=data.description,
            target_date=iso_date(data.target_date) if data.target_date else None,
            is_active=active,
            active_slot=user_id if active else str(goal_id),
            activated_at=t if active else None,
            created_at=t,
            updated_at=t,
        )
        created_event = goal_event(EventType.GOAL_CREATED, goal, 1)
        try:
            await repository.insert(goal, created_event)
        except DuplicateKeyError:
            if not active:
                raise
            continue  # another goal is active: this one starts inactive
        notify()
        return goal
    raise AssertionError("unreachable")


async def list_page(
    user_id: str, is_active: bool | None, cursor: str | None, limit: int
) -> tuple[list[Goal], str | None]:
    after = None
    if cursor is not None:
        key, oid = decode_cursor(CURSOR_KIND, cursor)
        after = (_parse_created(key), oid)
    goals = await repository.list_page(user_id, is_active, after, limit + 1)
    return cut_page(goals, limit, CURSOR_KIND, lambda goal: goal.created_at.isoformat())


def _parse_created(key: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(key))
    except ValueError:
        raise validation_problem(["query", "cursor"], "Not a cursor of this list.") from None


async def update(user_id: str, goal_id: str, data: GoalUpdate, notify: Notify) -> Goal:
    given = data.model_fields_set

    def build(goal: Goal) -> Change | None:
        fields: dict[str, Any] = {}
        if "title" in given and data.title is not None:
            fields["title"] = data.title
        if "description" in given:
            fields["description"] = data.description
        if "target_date" in given:
            fields["target_date"] = iso_date(data.target_date) if data.target_date else None
        if all(getattr(goal, k) == v for k, v in fields.items()):
            return None
        fields["updated_at"] = now()
        return fields, goal_event(EventType.GOAL_UPDATED, goal, goal.version + 1, **fields)

    return await change_or_404("Goal", repository.get, user_id, goal_id, build, notify)


async def activate(user_id: str, goal_id: str, notify: Notify) -> Goal:
    """Make the goal the user's one active goal; the previous one is deactivated.

    The unique index on ``active_slot`` keeps "at most one" true at every instant; racing
    activations retry until theirs is written, so the last one wins and one stays active.
    """
    goal = await get(user_id, goal_id)
    assert goal.id is not None
    for attempt in range(MAX_WRITE_ATTEMPTS):
        if attempt:
            await backoff(attempt)
            refreshed = await repository.get(user_id, goal.id)
            if refreshed is None:
                raise not_found("Goal")
            goal = refreshed
        if goal.is_active:
            return goal
        current = await repository.get_active(user_id)
        if current is not None:
            if not await _deactivate(current):
                continue
            notify()
        t = now()
        fields = {"is_active": True, "active_slot": user_id, "activated_at": t, "updated_at": t}
        event = goal_event(EventType.GOAL_ACTIVATED, goal, goal.version + 1, **fields)
        try:
            written = await apply_change(goal, fields, event, delete=False)
        except DuplicateKeyError:
            continue  # another activation won the slot in between: go again
        if written:
            notify()
            return cast(Goal, goal.model_copy(update={**fields, "version": goal.version + 1}))
    raise ProblemError(409, "Other activations kept racing this one; try again.")


async def _deactivate(goal: Goal) -> bool:
    fields = {"is_active": False, "active_slot": str(goal.id), "updated_at": now()}
    event = goal_event(EventType.GOAL_UPDATED, goal, goal.version + 1, **fields)
    return await apply_change(goal, fields, event, delete=False)


async def delete(user_id: str, goal_id: str, notify: Notify) -> None:
    """Delete a goal with its weekly targets and daily logs, each with its delete event."""
    goal = await get(user_id, goal_id)
    assert goal.id is not None
    # Children first, so a crash part-way leaves a goal the client can delete again; and
    # once more after, for a log or target written while we were deleting.
    await _delete_children(user_id, str(goal.id), notify)
    await tombstone(goal, notify)
    await _delete_children(user_id, str(goal.id), notify)


async def _delete_children(user_id: str, goal_id: str, notify: Notify) -> None:
    await targets_service.delete_all(user_id, notify, goal_id=goal_id)
    await logs_service.delete_all(user_id, notify, goal_id=goal_id)


async def tombstone(goal: Goal, notify: Notify) -> None:
    """Mark the goal deleted (frees its active slot) with its ``goal.deleted`` event."""
    oid = goal.id
    assert oid is not None

    async def load() -> Goal | None:
        return await repository.get(goal.user_id, oid)

    def build(current: Goal) -> Change:
        payload = GoalDeletedPayload(goal_id=str(oid), version=current.version + 1)
        event = Envelope.create(EventType.GOAL_DELETED, current.user_id, payload)
        return {"active_slot": str(oid), "updated_at": now()}, event

    await change_with_retry(load, build, delete=True, first=goal)
    notify()


async def delete_all(user_id: str, notify: Notify, batch: int = 200) -> int:
    """Erase every goal of the user, with its targets and logs (account deletion)."""
    deleted = 0
    await targets_service.delete_all(user_id, notify)
    await logs_service.delete_all(user_id, notify)
    while goals := await repository.some_of_user(user_id, batch):
        for goal in goals:
            await tombstone(goal, notify)
            deleted += 1
    return deleted
