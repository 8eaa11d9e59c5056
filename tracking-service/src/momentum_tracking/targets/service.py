"""Rules for weekly targets: one per goal and week, owned goals only, events for every change."""

from datetime import date
from typing import Any

from bson import ObjectId
from momentum_libs.events import Envelope, EventType, TargetPayload
from momentum_libs.problems import ProblemError
from pymongo.errors import DuplicateKeyError

from momentum_tracking.common import (
    dated_page,
    iso_date,
    not_found,
    now,
    parse_object_id,
)
from momentum_tracking.goals import repository as goals_repository
from momentum_tracking.store import Change, Notify, change_or_404, delete_each
from momentum_tracking.targets import repository
from momentum_tracking.targets.models import WeeklyTarget, dead_slot, live_slot
from momentum_tracking.targets.schemas import TargetCreate, TargetUpdate

CURSOR_KIND = "weekly-targets"


def target_event(type_: EventType, target: WeeklyTarget, version: int) -> Envelope:
    return Envelope.create(
        type_,
        target.user_id,
        TargetPayload(
            target_id=str(target.id),
            goal_id=target.goal_id,
            week_start=date.fromisoformat(target.week_start),
            target_minutes=target.target_minutes,
            version=version,
        ),
    )


async def require_goal(user_id: str, goal_id: str) -> str:
    """The id of a live goal of this user; 404 for another user's, a missing or a bad id."""
    oid = parse_object_id(goal_id)
    if oid is None or await goals_repository.get(user_id, oid) is None:
        raise not_found("Goal")
    return str(oid)


async def get(user_id: str, target_id: str) -> WeeklyTarget:
    oid = parse_object_id(target_id)
    target = None if oid is None else await repository.get(user_id, oid)
    if target is None:
        raise not_found("Weekly target")
    return target


async def create(user_id: str, data: TargetCreate, notify: Notify) -> WeeklyTarget:
    goal_id = await require_goal(user_id, data.goal_id)
    t = now()
    week = iso_date(data.week_start)
    target = WeeklyTarget(
        id=ObjectId(),
        user_id=user_id,
        goal_id=goal_id,
        week_start=week,
        target_minutes=data.target_minutes,
        note=data.note,
        slot=live_slot(goal_id, week),
        created_at=t,
        updated_at=t,
    )
    created_event = target_event(EventType.TARGET_CREATED, target, 1)
    try:
        await repository.insert(target, created_event)
    except DuplicateKeyError:
        raise ProblemError(
            409, f"This goal already has a weekly target for the week of {week}."
        ) from None
    notify()
    return target


async def list_page(
    user_id: str,
    goal_id: str | None,
    week_from: date | None,
    week_to: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[WeeklyTarget], str | None]:
    return await dated_page(
        repository.list_page,
        CURSOR_KIND,
        lambda target: target.week_start,
        user_id,
        goal_id,
        week_from,
        week_to,
        cursor,
        limit,
    )


async def update(user_id: str, target_id: str, data: TargetUpdate, notify: Notify) -> WeeklyTarget:
    given = data.model_fields_set

    def build(target: WeeklyTarget) -> Change | None:
        fields: dict[str, Any] = {}
        if "target_minutes" in given and data.target_minutes is not None:
            fields["target_minutes"] = data.target_minutes
        if "note" in given:
            fields["note"] = data.note
        if all(getattr(target, k) == v for k, v in fields.items()):
            return None
        fields["updated_at"] = now()
        new = target.model_copy(update=fields)
        return fields, target_event(EventType.TARGET_UPDATED, new, target.version + 1)

    return await change_or_404("Weekly target", repository.get, user_id, target_id, build, notify)


async def delete(user_id: str, target_id: str, notify: Notify) -> None:
    await change_or_404(
        "Weekly target", repository.get, user_id, target_id, _tombstone, notify, delete=True
    )


def _tombstone(target: WeeklyTarget) -> Change:
    """Deleted: its slot is freed, and ``target.deleted`` carries the state it had."""
    fields = {"slot": dead_slot(str(target.id)), "updated_at": now()}
    return fields, target_event(EventType.TARGET_DELETED, target, target.version + 1)


async def delete_all(
    user_id: str, notify: Notify, *, goal_id: str | None = None, batch: int = 200
) -> int:
    """Delete every target of the user (or of one goal of theirs), each with its event."""
    return await delete_each(
        lambda: repository.some_of_user(user_id, goal_id, batch),
        lambda oid: repository.get(user_id, oid),
        _tombstone,
        notify,
    )
