"""Apply domain events to the projections: idempotent and order-independent.

Every event is applied as one optimistic attempt, retried on conflict:

1. read the user's projection (its ``version`` is the commit guard);
2. store the entity's new state as a fact, only if its payload ``version`` is newer
   (a duplicate or an older event changes no fact);
3. recompute the touched days from the facts of those days, ``$set`` them in the
   year documents (a pure function of the facts: writing it twice is harmless);
4. update the streak runs in place when the touched days are recent, else recompute
   them from the year documents; commit the user's projection guarded by its version.

A crash anywhere before the commit leaves the event unacknowledged; its redelivery
recomputes the same days (a fact remembers every date it has been on), so nothing is
counted twice and nothing is lost. The commit guard makes two replicas that handle
events of the same user at once retry instead of overwriting each other.
"""

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime

import structlog
from momentum_libs.events import (
    Envelope,
    EventType,
    GoalDeletedPayload,
    GoalPayload,
    LogPayload,
    LogUpdatedPayload,
    TargetPayload,
    UnknownEventError,
    UserPayload,
)
from pydantic import ValidationError

from momentum_analytics.projections import streaks
from momentum_analytics.projections.models import (
    ActiveGoal,
    DayTotal,
    GoalState,
    LogFact,
    TargetFact,
    UserProjection,
    YearDays,
)
from momentum_analytics.projections.repository import ProjectionRepository

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ConflictError(RuntimeError):
    """Too many concurrent writers on one user; the event stays pending and is retried."""


def pick_active_goal(goals: dict[str, GoalState]) -> ActiveGoal | None:
    """The active goal: the latest activation among live active goals, whatever the order."""
    live = [(gid, g) for gid, g in goals.items() if g.is_active and not g.deleted]
    if not live:
        return None
    gid, goal = max(
        live, key=lambda item: (item[1].activated_at or _EPOCH, item[1].version, item[0])
    )
    return ActiveGoal(id=gid, title=goal.title)


def day_totals(
    facts: Iterable[LogFact], dates: Iterable[str], excluded_goals: set[str]
) -> dict[str, DayTotal | None]:
    """Each date's totals from the live facts on it; None for a day with nothing."""
    totals: dict[str, DayTotal | None] = dict.fromkeys(dates)
    for fact in facts:
        if fact.deleted or fact.goal_id in excluded_goals or fact.date not in totals:
            continue
        day = totals[fact.date] or DayTotal()
        day.t += fact.minutes
        day.g[fact.goal_id] = day.g.get(fact.goal_id, 0) + fact.minutes
        totals[fact.date] = day
    return totals


def year_total(doc: YearDays) -> int:
    return sum(day.t for day in doc.days.values())


def active_days(years: Iterable[YearDays]) -> list[date]:
    return [date.fromisoformat(d) for doc in years for d, day in doc.days.items() if day.t > 0]


class ProjectionService:
    def __init__(self, repo: ProjectionRepository) -> None:
        self.repo = repo

    async def handle(self, envelope: Envelope) -> None:
        """The consumer's handler; raises UnknownEventError for a version it does not know."""
        try:
            payload = envelope.typed_payload()
        except ValidationError as exc:  # a payload no producer of ours writes: dead-letter it
            raise UnknownEventError(f"{envelope.type} payload is not valid: {exc}") from exc
        uid = envelope.user_id
        kind = envelope.type
        if kind in (EventType.USER_REGISTERED, EventType.USER_UPDATED):
            assert isinstance(payload, UserPayload)
            await self._retry(lambda: self._timezone(uid, payload.timezone, envelope.occurred_at))
        elif kind is EventType.USER_DELETED:
            await self._retry(lambda: self._user_deleted(uid))
        elif kind in (EventType.GOAL_CREATED, EventType.GOAL_UPDATED, EventType.GOAL_ACTIVATED):
            assert isinstance(payload, GoalPayload)
            state = GoalState(
                title=payload.title,
                is_active=payload.is_active,
                activated_at=payload.activated_at,
                version=payload.version,
            )
            await self._retry(lambda: self._goal(uid, payload.goal_id, state))
        elif kind is EventType.GOAL_DELETED:
            assert isinstance(payload, GoalDeletedPayload)
            state = GoalState(version=payload.version, deleted=True)
            await self._retry(lambda: self._goal(uid, payload.goal_id, state))
        elif kind in (EventType.TARGET_CREATED, EventType.TARGET_UPDATED, EventType.TARGET_DELETED):
            assert isinstance(payload, TargetPayload)
            await self._target(uid, payload, deleted=kind is EventType.TARGET_DELETED)
        elif kind in (EventType.LOG_CREATED, EventType.LOG_DELETED):
            assert isinstance(payload, LogPayload)
            fact = LogFact(
                id=payload.log_id,
                user_id=uid,
                goal_id=payload.goal_id,
                date=payload.date.isoformat(),
                minutes=payload.minutes,
                version=payload.version,
                deleted=kind is EventType.LOG_DELETED,
            )
            await self._retry(lambda: self._log(uid, fact, {fact.date}))
        elif kind is EventType.LOG_UPDATED:
            assert isinstance(payload, LogUpdatedPayload)
            fact = LogFact(
                id=payload.log_id,
                user_id=uid,
                goal_id=payload.new.goal_id,
                date=payload.new.date.isoformat(),
                minutes=payload.new.minutes,
                version=payload.version,
            )
            touched = {payload.old.date.isoformat(), fact.date}
            await self._retry(lambda: self._log(uid, fact, touched))

    async def _retry(self, attempt: Callable[[], Awaitable[bool]]) -> None:
        for _ in range(MAX_ATTEMPTS):
            if await attempt():
                return
        raise ConflictError("too many concurrent changes of one user's projection")

    async def _user(self, uid: str) -> UserProjection:
        return await self.repo.get_user(uid) or UserProjection(id=uid)

    # -- users -----------------------------------------------------------------------
    async def _timezone(self, uid: str, timezone: str, at: datetime) -> bool:
        user = await self._user(uid)
        if user.deleted or (user.timezone_at is not None and at <= user.timezone_at):
            return True
        new = user.model_copy(update={"timezone": timezone, "timezone_at": at})
        return await self.repo.commit_user(new, user.version)

    async def _user_deleted(self, uid: str) -> bool:
        user = await self._user(uid)
        tombstone = UserProjection(id=uid, deleted=True)
        if not user.deleted and not await self.repo.commit_user(tombstone, user.version):
            return False
        await self.repo.wipe_user_data(uid)
        return True

    # -- goals and targets -------------------------------------------------------------
    async def _goal(self, uid: str, goal_id: str, state: GoalState) -> bool:
        user = await self._user(uid)
        if user.deleted:
            await self.repo.wipe_user_data(uid)
            return True
        current = user.goals.get(goal_id)
        newer = current is None or state.version > current.version
        if not newer and not state.deleted:
            return True
        goals = dict(user.goals)
        if newer:
            goals[goal_id] = state
        new = user.model_copy(update={"goals": goals, "active_goal": pick_active_goal(goals)})
        touched: set[str] = set()
        if goals[goal_id].deleted:
            # Its logs leave every total now; the log.deleted events of tracking's cascade
            # recompute the same days again later, which changes nothing.
            for fact in await self.repo.facts_of_goal(uid, goal_id):
                touched.update(fact.dates, [fact.date])
        return await self._recompute_and_commit(user.version, new, touched)

    async def _target(self, uid: str, payload: TargetPayload, *, deleted: bool) -> None:
        user = await self.repo.get_user(uid)
        if user is not None and user.deleted:
            return
        await self.repo.put_target(
            TargetFact(
                id=payload.target_id,
                user_id=uid,
                goal_id=payload.goal_id,
                week_start=payload.week_start.isoformat(),
                target_minutes=payload.target_minutes,
                version=payload.version,
                deleted=deleted,
            )
        )

    # -- logs ------------------------------------------------------------------------------
    async def _log(self, uid: str, incoming: LogFact, event_dates: set[str]) -> bool:
        user = await self._user(uid)
        if user.deleted:
            await self.repo.wipe_user_data(uid)
            return True
        stored = await self.repo.get_fact(incoming.id)
        touched = set(event_dates)
        if stored is not None:
            touched.update(stored.dates, [stored.date])
        if stored is None or incoming.version > stored.version:
            history = sorted({*(stored.dates if stored else []), incoming.date})
            fact = incoming.model_copy(update={"dates": history})
            if not await self.repo.put_fact(fact, stored.version if stored else None):
                return False
            touched.add(fact.date)
        return await self._recompute_and_commit(user.version, user, touched)

    # -- the shared step ------------------------------------------------------------------
    async def _recompute_and_commit(
        self, expected_version: int, user: UserProjection, touched: set[str]
    ) -> bool:
        uid = user.id
        streak = user.streak
        year_totals = dict(user.year_totals)
        if touched:
            facts = await self.repo.facts_on(uid, touched)
            totals = day_totals(facts, touched, user.deleted_goals)
            years = await self.repo.get_years(uid, {int(d[:4]) for d in touched})
            for year, doc in years.items():
                changes = {d: t for d, t in totals.items() if int(d[:4]) == year}
                await self.repo.set_days(uid, year, changes)
                for day, total in changes.items():
                    if total is None:
                        doc.days.pop(day, None)
                    else:
                        doc.days[day] = total
                if (value := year_total(doc)) > 0:
                    year_totals[str(year)] = value
                else:
                    year_totals.pop(str(year), None)
            next_streak: streaks.StreakState | None = streak
            for day in sorted(touched):
                assert next_streak is not None
                next_streak = streaks.with_day(
                    next_streak, date.fromisoformat(day), totals[day] is not None
                )
                if next_streak is None:
                    break
            if next_streak is None:
                # A change deep in the past: recompute the runs from every year of the user.
                every = {doc.year: doc for doc in await self.repo.years_of_user(uid)}
                every.update(years)
                next_streak = streaks.from_active_days(active_days(every.values()))
            streak = next_streak
        new = user.model_copy(update={"streak": streak, "year_totals": year_totals})
        return await self.repo.commit_user(new, expected_version)
