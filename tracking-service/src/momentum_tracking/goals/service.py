"""Rules for goals: one active goal per user, an event for every change, owned goals only.

Deleting a goal (with everything under it) is :mod:`momentum_tracking.erasure`'s.
"""

from datetime import datetime
from typing import Any

from bson import ObjectId
from momentum_libs.clock import utcnow
from momentum_libs.conditional import IfMatch
from momentum_libs.events import Envelope, EventType, GoalDeletedPayload, GoalPayload
from momentum_libs.outbox import Change
from momentum_libs.problems import ProblemError, validation_problem
from momentum_libs.retry import WRITE_ATTEMPTS, backoff
from momentum_libs.timestamps import as_utc
from pymongo.errors import DuplicateKeyError

from momentum_tracking.common import cut_page, decode_cursor, iso_date
from momentum_tracking.goals.models import Goal
from momentum_tracking.goals.repository import GoalRepository
from momentum_tracking.goals.schemas import GoalCreate, GoalUpdate
from momentum_tracking.ids import DocumentId, parse_id

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


def tombstone(goal: Goal) -> Change:
    """Deleted: its active slot is freed, and ``goal.deleted`` tells of it."""
    payload = GoalDeletedPayload(goal_id=str(goal.id), version=goal.version + 1)
    event = Envelope.create(EventType.GOAL_DELETED, goal.user_id, payload)
    return {"active_slot": str(goal.id), "updated_at": utcnow()}, event


class GoalService:
    def __init__(self, goals: GoalRepository) -> None:
        self._goals = goals

    async def get(self, user_id: str, goal_id: str) -> Goal:
        return await self._goals.get_or_404(user_id, goal_id)

    async def require_owned(self, user_id: str, goal_id: str) -> str:
        """The id of a live goal of this user; 404 for another user's, a missing or a bad id."""
        return str((await self.get(user_id, goal_id)).id)

    async def is_live(self, user_id: str, goal_id: str) -> bool:
        oid = parse_id(goal_id)
        return oid is not None and await self._goals.get(user_id, oid) is not None

    async def create(
        self, user_id: str, data: GoalCreate, *, goal_id: DocumentId | None = None
    ) -> Goal:
        """A user's goal is created active when they have no active goal (their first one)."""
        goal_id = goal_id or ObjectId()
        t = utcnow()
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
            try:
                return await self._goals.insert(goal, goal_event(EventType.GOAL_CREATED, goal, 1))
            except DuplicateKeyError:
                if not active:
                    raise
                # another goal is active: this one starts inactive
        raise AssertionError("unreachable")

    async def put(
        self, user_id: str, goal_id: str, data: GoalCreate, if_match: IfMatch | None = None
    ) -> tuple[Goal, bool]:
        """``PUT /goals/{id}``: POST's create under the client's id, or PATCH's write of
        every field (True: created)."""

        async def create(new_id: str) -> Goal:
            return await self.create(user_id, data, goal_id=new_id)

        async def replace(goal: Goal) -> Goal:
            every_field = GoalUpdate.model_validate(data.model_dump())
            return await self.update(user_id, str(goal.id), every_field, if_match)

        return await self._goals.put(user_id, goal_id, create, replace, if_match)

    async def list_page(
        self, user_id: str, is_active: bool | None, cursor: str | None, limit: int
    ) -> tuple[list[Goal], str | None]:
        after = None
        if cursor is not None:
            key, oid = decode_cursor(CURSOR_KIND, cursor)
            after = (_parse_created(key), oid)
        goals = await self._goals.list_page(user_id, is_active, after, limit + 1)
        return cut_page(goals, limit, CURSOR_KIND, lambda goal: goal.created_at.isoformat())

    async def update(
        self, user_id: str, goal_id: str, data: GoalUpdate, if_match: IfMatch | None = None
    ) -> Goal:
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
            fields["updated_at"] = utcnow()
            return fields, goal_event(EventType.GOAL_UPDATED, goal, goal.version + 1, **fields)

        return await self._goals.change_or_404(user_id, goal_id, build, if_match=if_match)

    async def activate(self, user_id: str, goal_id: str) -> Goal:
        """Make the goal the user's one active goal; the previous one is deactivated.

        The unique index on ``active_slot`` keeps "at most one" true at every instant;
        racing activations retry until theirs is written, so the last one wins and one
        stays active.
        """
        goal = await self.get(user_id, goal_id)
        assert goal.id is not None
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                await backoff(attempt)
                goal = await self.get(user_id, goal_id)
            if goal.is_active:
                return goal
            current = await self._goals.get_active(user_id)
            if current is not None and await self._deactivate(current) is None:
                continue
            t = utcnow()
            fields = {"is_active": True, "active_slot": user_id, "activated_at": t, "updated_at": t}
            event = goal_event(EventType.GOAL_ACTIVATED, goal, goal.version + 1, **fields)
            try:
                written = await self._goals.write(goal, fields, event)
            except DuplicateKeyError:
                continue  # another activation won the slot in between: go again
            if written is not None:
                return written
        raise ProblemError(409, "Other activations kept racing this one; try again.")

    async def _deactivate(self, goal: Goal) -> Goal | None:
        fields = {"is_active": False, "active_slot": str(goal.id), "updated_at": utcnow()}
        event = goal_event(EventType.GOAL_UPDATED, goal, goal.version + 1, **fields)
        return await self._goals.write(goal, fields, event)


def _parse_created(key: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(key))
    except ValueError:
        raise validation_problem(["query", "cursor"], "Not a cursor of this list.") from None
