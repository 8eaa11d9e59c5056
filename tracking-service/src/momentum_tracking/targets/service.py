"""Rules for weekly targets: one per goal and week, owned goals only, events for every change."""

from datetime import date
from typing import Any

from bson import ObjectId
from momentum_libs.clock import utcnow
from momentum_libs.conditional import IfMatch
from momentum_libs.events import Envelope, EventType, TargetPayload
from momentum_libs.outbox import Change
from momentum_libs.problems import ProblemError
from pymongo.errors import DuplicateKeyError

from momentum_tracking.common import dated_page, iso_date, not_found
from momentum_tracking.goals.service import GoalService
from momentum_tracking.ids import DocumentId, parse_id
from momentum_tracking.targets.models import WeeklyTarget, dead_slot, live_slot
from momentum_tracking.targets.repository import TargetRepository
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


def tombstone(target: WeeklyTarget) -> Change:
    """Deleted: its slot is freed, and ``target.deleted`` carries the state it had."""
    fields = {"slot": dead_slot(str(target.id)), "updated_at": utcnow()}
    return fields, target_event(EventType.TARGET_DELETED, target, target.version + 1)


class TargetService:
    def __init__(self, targets: TargetRepository, goals: GoalService) -> None:
        self._targets = targets
        self._goals = goals

    async def get(self, user_id: str, target_id: str) -> WeeklyTarget:
        return await self._targets.get_or_404(user_id, target_id)

    async def create(
        self, user_id: str, data: TargetCreate, *, target_id: DocumentId | None = None
    ) -> WeeklyTarget:
        oid = parse_id(data.goal_id)
        if oid is None:
            raise not_found("Goal")
        goal_id = str(oid)
        t = utcnow()
        week = iso_date(data.week_start)
        target = WeeklyTarget(
            id=target_id or ObjectId(),
            user_id=user_id,
            goal_id=goal_id,
            week_start=week,
            target_minutes=data.target_minutes,
            note=data.note,
            slot=live_slot(goal_id, week),
            created_at=t,
            updated_at=t,
        )
        event = target_event(EventType.TARGET_CREATED, target, 1)
        try:
            await self._targets.insert(target, event, publish=False)
        except DuplicateKeyError:
            await self._goals.require_owned(user_id, goal_id)  # a foreign goal's is a 404
            raise ProblemError(
                409, f"This goal already has a weekly target for the week of {week}."
            ) from None
        # The owned-goal check, after the write: see LogService.create for why.
        if not await self._goals.is_live(user_id, goal_id):
            await self._targets.tombstone(user_id, target, tombstone)
            raise not_found("Goal")
        self._targets.publish()
        return target

    async def put(
        self, user_id: str, target_id: str, data: TargetCreate, if_match: IfMatch | None = None
    ) -> tuple[WeeklyTarget, bool]:
        """``PUT /weekly-targets/{id}``: POST's create under the client's id, or a
        replacement of its minutes and note (True: created). Its goal and week never
        change (the one-per-week slot is theirs): another pair is a 409."""

        async def create(new_id: str) -> WeeklyTarget:
            await self._goals.require_owned(user_id, data.goal_id)  # a 404 burns no id
            return await self.create(user_id, data, target_id=new_id)

        async def replace(target: WeeklyTarget) -> WeeklyTarget:
            if (str(parse_id(data.goal_id)), iso_date(data.week_start)) != (
                target.goal_id,
                target.week_start,
            ):
                raise ProblemError(
                    409,
                    "A weekly target's goal_id and week_start never change; delete it and "
                    "create another.",
                )
            rest = TargetUpdate(target_minutes=data.target_minutes, note=data.note)
            return await self.update(user_id, str(target.id), rest, if_match)

        return await self._targets.put(user_id, target_id, create, replace, if_match)

    async def list_page(
        self,
        user_id: str,
        goal_id: str | None,
        week_from: date | None,
        week_to: date | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[WeeklyTarget], str | None]:
        return await dated_page(
            self._targets.list_page,
            CURSOR_KIND,
            lambda target: target.week_start,
            user_id,
            goal_id,
            week_from,
            week_to,
            cursor,
            limit,
        )

    async def update(
        self,
        user_id: str,
        target_id: str,
        data: TargetUpdate,
        if_match: IfMatch | None = None,
    ) -> WeeklyTarget:
        given = data.model_fields_set

        def build(target: WeeklyTarget) -> Change | None:
            fields: dict[str, Any] = {}
            if "target_minutes" in given and data.target_minutes is not None:
                fields["target_minutes"] = data.target_minutes
            if "note" in given:
                fields["note"] = data.note
            if all(getattr(target, k) == v for k, v in fields.items()):
                return None
            fields["updated_at"] = utcnow()
            new = target.model_copy(update=fields)
            return fields, target_event(EventType.TARGET_UPDATED, new, target.version + 1)

        return await self._targets.change_or_404(user_id, target_id, build, if_match=if_match)

    async def delete(self, user_id: str, target_id: str, if_match: IfMatch | None = None) -> None:
        await self._targets.change_or_404(
            user_id, target_id, tombstone, delete=True, if_match=if_match
        )
