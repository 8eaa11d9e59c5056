"""Rules for breaks: declared for today or later, never for the past; one per scope and day.

A break protects the days from ``start_date`` to ``end_date`` (the user's local dates)
of one goal, or of every goal (``goal_id`` None). "Today" is the user's local today
(:mod:`momentum_tracking.days`). A break may start today or later; once it has started
its start is history: it can be shortened or lengthened, down to ending yesterday,
but not deleted; one that ended before yesterday keeps its dates.

Two breaks of the same scope never share a day. That is checked after the write, like
the owned-goal check of logs (``LogService._undo_unless_goal_lives``): of two racing
writes, the later one to check sees the other and is taken back, so an overlap never
stays (at worst both are refused, and a retry settles it).
"""

from datetime import date, timedelta
from typing import Any

from bson import ObjectId
from momentum_libs.clock import utcnow
from momentum_libs.conditional import IfMatch
from momentum_libs.events import BreakPayload, Envelope, EventType
from momentum_libs.outbox import Change
from momentum_libs.problems import ProblemError, validation_problem

from momentum_tracking.breaks.models import Break
from momentum_tracking.breaks.repository import BreakRepository
from momentum_tracking.breaks.schemas import BreakCreate, BreakUpdate, check_span
from momentum_tracking.common import check_range, cut_page, decode_cursor, iso_date, not_found
from momentum_tracking.days.service import DayService, Today
from momentum_tracking.goals.service import GoalService
from momentum_tracking.ids import parse_id

CURSOR_KIND = "breaks"


def break_event(type_: EventType, brk: Break, version: int) -> Envelope:
    payload = BreakPayload(
        break_id=str(brk.id),
        goal_id=brk.goal_id,
        start_date=date.fromisoformat(brk.start_date),
        end_date=date.fromisoformat(brk.end_date),
        kind=brk.kind,
        version=version,
    )
    return Envelope.create(type_, brk.user_id, payload)


def tombstone(brk: Break) -> Change:
    """Deleted: ``break.deleted`` carries the state it had."""
    return {"updated_at": utcnow()}, break_event(EventType.BREAK_DELETED, brk, brk.version + 1)


def _overlap() -> ProblemError:
    return ProblemError(
        409, "Another break of the same scope (this goal, or every goal) covers one of these days."
    )


def _has_started(brk: Break, today: Today) -> bool:
    return date.fromisoformat(brk.start_date) <= today.earliest


def _check_start(start: date, today: Today) -> None:
    if start < today.earliest:
        raise validation_problem(
            ["body", "start_date"],
            f"A break starts today ({today.earliest.isoformat()}) or later, never in the past.",
        )


class BreakService:
    def __init__(self, breaks: BreakRepository, goals: GoalService, days: DayService) -> None:
        self._breaks = breaks
        self._goals = goals
        self._days = days

    async def get(self, user_id: str, break_id: str) -> Break:
        return await self._breaks.get_or_404(user_id, break_id)

    async def create(self, user_id: str, data: BreakCreate) -> Break:
        _check_start(data.start_date, await self._days.today(user_id))
        return await self._insert(user_id, data)

    async def restore(self, user_id: str, data: BreakCreate) -> Break:
        """An imported break: only of days before the account existed (its days since are
        its own history, which no file rewrites), so no past of this account is excused."""
        await self.check_restorable(user_id, data)
        return await self._insert(user_id, data)

    async def check_restorable(self, user_id: str, data: BreakCreate) -> None:
        """422 unless ``data`` ends before the account's first day."""
        first_day = await self._days.first_day(user_id)
        if first_day is None:
            raise ProblemError(
                422,
                "Not imported: tracking does not know when the account began (it learns it "
                "from the registration: an account a moment old, or one from before this).",
            )
        if data.end_date >= first_day:
            raise ProblemError(
                422,
                "Not imported: an imported break must end before the account's first day "
                f"({first_day.isoformat()}); declare a break for days to come with POST /breaks.",
            )

    async def _insert(self, user_id: str, data: BreakCreate) -> Break:
        goal_id = None
        if data.goal_id is not None:
            oid = parse_id(data.goal_id)
            if oid is None:
                raise not_found("Goal")
            goal_id = str(oid)
        t = utcnow()
        brk = Break(
            id=ObjectId(),
            user_id=user_id,
            goal_id=goal_id,
            start_date=iso_date(data.start_date),
            end_date=iso_date(data.end_date),
            kind=data.kind,
            note=data.note,
            created_at=t,
            updated_at=t,
        )
        await self._breaks.insert(brk, break_event(EventType.BREAK_CREATED, brk, 1), publish=False)
        # Both checks after the write (see the module's docstring and LogService.create).
        if goal_id is not None and not await self._goals.is_live(user_id, goal_id):
            await self._breaks.tombstone(user_id, brk, tombstone)
            raise not_found("Goal")
        if await self._breaks.overlapping(brk) is not None:
            await self._breaks.tombstone(user_id, brk, tombstone)
            raise _overlap()
        self._breaks.publish()
        return brk

    async def list_page(
        self, user_id: str, first: date | None, last: date | None, cursor: str | None, limit: int
    ) -> tuple[list[Break], str | None]:
        check_range(first, last)
        after = decode_cursor(CURSOR_KIND, cursor) if cursor is not None else None
        items = await self._breaks.list_page(
            user_id,
            iso_date(first) if first else None,
            iso_date(last) if last else None,
            after,
            limit + 1,
        )
        return cut_page(items, limit, CURSOR_KIND, lambda brk: brk.start_date)

    async def update(
        self, user_id: str, break_id: str, data: BreakUpdate, if_match: IfMatch | None = None
    ) -> Break:
        today = await self._days.today(user_id)
        given = data.model_fields_set

        def build(brk: Break) -> Change | None:
            fields = _changes(brk, data, given, today)
            if all(getattr(brk, k) == v for k, v in fields.items()):
                return None
            new = brk.model_copy(update=fields)
            event = break_event(EventType.BREAK_UPDATED, new, brk.version + 1)
            return {**fields, "updated_at": utcnow()}, event

        before = await self.get(user_id, break_id)
        planned = before.model_copy(update=_changes(before, data, given, today))
        if await self._breaks.overlapping(planned) is not None:
            raise _overlap()  # checked again after the write, for a racing one
        written = await self._breaks.change_or_404(user_id, break_id, build, if_match=if_match)
        moved = (written.start_date, written.end_date) != (before.start_date, before.end_date)
        if moved and await self._breaks.overlapping(written) is not None:
            await self._put_back(written, before)
            raise _overlap()
        return written

    async def _put_back(self, written: Break, before: Break) -> None:
        """Undo a change of dates that made an overlap (its event tells of the undo)."""
        dates = {"start_date": before.start_date, "end_date": before.end_date}

        def build(brk: Break) -> Change | None:
            if brk.revision != written.revision:
                return None  # changed again meanwhile: that write is the client's word now
            new = brk.model_copy(update=dates)
            event = break_event(EventType.BREAK_UPDATED, new, brk.version + 1)
            return {**dates, "updated_at": utcnow()}, event

        async def load() -> Break | None:
            return await self._breaks.get(written.user_id, written.id)

        await self._breaks.change(load, build)

    async def delete(self, user_id: str, break_id: str, if_match: IfMatch | None = None) -> None:
        today = await self._days.today(user_id)

        def build(brk: Break) -> Change:
            if _has_started(brk, today):
                raise ProblemError(
                    409,
                    "This break has started: it can be shortened (PATCH end_date, down to "
                    "yesterday) but not deleted.",
                )
            return tombstone(brk)

        await self._breaks.change_or_404(user_id, break_id, build, delete=True, if_match=if_match)


def _changes(brk: Break, data: BreakUpdate, given: set[str], today: Today) -> dict[str, Any]:
    """The fields ``data`` sets on ``brk`` as read; 409 or 422 when a rule forbids them."""
    start = date.fromisoformat(brk.start_date)
    end = date.fromisoformat(brk.end_date)
    fields: dict[str, Any] = {}
    if data.start_date is not None and data.start_date != start:
        if _has_started(brk, today):
            raise ProblemError(409, "This break has started: its start_date cannot change.")
        _check_start(data.start_date, today)
        start = data.start_date
        fields["start_date"] = iso_date(start)
    if data.end_date is not None and data.end_date != end:
        yesterday = today.earliest - timedelta(days=1)
        if _has_started(brk, today):
            # Which past days it covers is history: it may end yesterday, not before, and
            # one that ended before yesterday cannot reach past days it did not cover.
            if end < yesterday:
                raise ProblemError(409, "This break is over: its end_date cannot change.")
            if data.end_date < yesterday:
                raise validation_problem(
                    ["body", "end_date"],
                    f"A break that has started can end yesterday ({yesterday.isoformat()}) "
                    "at the earliest: the days before are history.",
                )
        end = data.end_date
        fields["end_date"] = iso_date(end)
    try:
        check_span(start, end)
    except ValueError as exc:
        raise validation_problem(["body", "end_date"], str(exc)) from None
    if data.kind is not None:
        fields["kind"] = data.kind
    if "note" in given:
        fields["note"] = data.note
    return fields
