"""Apply domain events to the projections: idempotent and order-independent.

Every event is applied as one optimistic attempt, retried on conflict:

1. read the user's projection (its ``version`` is the commit guard) and the month
   documents of the event's dates;
2. place the log's new state in each of those months, only where its payload
   ``version`` is newer than the entry there (a duplicate or an older event changes
   nothing): live on its date's month, deleted in the month it moved away from;
3. recompute the touched days from the logs of those days and write each changed month
   whole, guarded by its own version (its days are a pure function of its logs);
4. update the month totals, the recent days and the streak folds (moved on over the
   days leaving the recent window, or from every month when an older day changed:
   projections/rules.py); commit the user's projection guarded by its version.

Why this converges whatever the delivery order, once every event has been applied:
each month keeps, per log, the state the highest version touching that month gave it;
a log's final date is touched by its final event, and every month it left was touched by
the later event that moved it away. Before that event arrives, a later one may overtake
it (v3 before v2): an event that does not find the log's previous state where it names
it (absent, gone, or already this version or newer) reads every month of the user and
takes the log off each month but its own, as of its version; so the log is counted once
as soon as its latest event is in, and an in-order delivery reads only its own months.
Only if the log's LAST event is lost (dead-lettered, trimmed off the stream) does a month
keep a stale entry, until ``momentum-analytics-rebuild --user``.

A crash before the commit leaves the event unacknowledged, and its redelivery writes
nothing twice: a month's days are written with its logs, in one document. The user's
projection is then recomputed for the event's own dates, and (the redelivery finds its
own version already placed, so it reads every month) for each day it took the log off
in other months; a day the first attempt took a log off in passing inside the month it
moved away from (a stale entry of a reordered delivery, overwritten there by the move)
is recounted in the user's projection when the event that moved the log off that day
arrives. Reads of the months
(weeks before the recent window, the heatmap) may show a change just before its commit.
The guards make two replicas that handle events of the same user at once retry instead
of overwriting each other.
"""

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from momentum_libs import streak_rules as rules
from momentum_libs.clock import Clock
from momentum_libs.events import (
    BreakPayload,
    Envelope,
    EventType,
    GoalDeletedPayload,
    GoalPayload,
    LogPayload,
    LogUpdatedPayload,
    TargetPayload,
    UserPayload,
)
from momentum_libs.retry import WRITE_ATTEMPTS, backoff

from momentum_analytics.projections.models import (
    ActiveGoal,
    DayTotal,
    GoalState,
    LogEntry,
    MonthDays,
    TargetFact,
    UserProjection,
    month_of,
)
from momentum_analytics.projections.repository import ProjectionRepository

log = structlog.get_logger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECENT_DAYS = 10
"""How far ``recent_days`` reaches before the UTC date of a commit: past the first day
of the current week in any timezone (that is at most 7 days before UTC's today)."""


class ConflictError(RuntimeError):
    """Too many concurrent writers on one user; the event stays pending and is retried."""


class LateLogEventError(RuntimeError):
    """A log event that may belong to a log whose deleted entry its month dropped, where
    no :data:`LogLookup` can tell (the consumer dead-letters it)."""


LogLookup = Callable[[str, str], Awaitable[bool]]
"""(user id, log id) → whether tracking holds that log live: the source of truth, asked
only when the months cannot tell (see :meth:`ProjectionService._is_stale`)."""


async def retry_on_conflict(attempt: Callable[[], Awaitable[bool]], gave_up: str) -> None:
    """Run ``attempt`` until it wins its guarded writes, pausing between lost races as the
    house's one retry policy says; ConflictError(``gave_up``) after its last attempt."""
    for n in range(WRITE_ATTEMPTS):
        if await attempt():
            return
        await backoff(n)
    raise ConflictError(gave_up)


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
    entries: Iterable[LogEntry], dates: Iterable[str], excluded_goals: set[str]
) -> dict[str, DayTotal | None]:
    """Each date's totals from the live logs on it; None for a day with nothing."""
    totals: dict[str, DayTotal | None] = dict.fromkeys(dates)
    for entry in entries:
        if entry.deleted or entry.goal_id in excluded_goals or entry.date not in totals:
            continue
        day = totals[entry.date] or DayTotal.model_construct(t=0, g={})
        day.t += entry.minutes
        day.g[entry.goal_id] = day.g.get(entry.goal_id, 0) + entry.minutes
        totals[entry.date] = day
    return totals


def recount_days(month: MonthDays, dates: Iterable[str], excluded_goals: set[str]) -> bool:
    """Recompute these days of the month from its logs; whether any of them changed."""
    changed = False
    for day, total in day_totals(month.logs.values(), dates, excluded_goals).items():
        if total is None:
            changed |= month.days.pop(day, None) is not None
        elif month.days.get(day) != total:
            month.days[day] = total
            changed = True
    return changed


def place(months: Mapping[str, MonthDays], log_id: str, entry: LogEntry) -> tuple[bool, str | None]:
    """Put the log's state in its month unless a newer one is there.

    Returns (whether it changed, the date the log had there before)."""
    month = months[month_of(entry.date)]
    held = month.logs.get(log_id)
    if held is not None and held.version >= entry.version:
        return False, held.date
    month.logs[log_id] = entry
    return True, None if held is None else held.date


def recent_window(
    days: Mapping[str, DayTotal], since: date | None, today: date
) -> tuple[date, dict[str, DayTotal]]:
    """The window start after a commit on ``today`` (UTC), and the days of ``days`` in it."""
    start = today - timedelta(days=RECENT_DAYS)
    if since is not None:
        start = max(start, since)
    first = start.isoformat()
    return start, {d: total for d, total in days.items() if d >= first}


def scope_minutes(days: Mapping[str, DayTotal], scope: str) -> dict[date, int]:
    """Each day's minutes in a scope: all goals (rules.ALL_GOALS) or one goal."""
    return {
        date.fromisoformat(d): total.t if scope == rules.ALL_GOALS else total.g.get(scope, 0)
        for d, total in days.items()
    }


def scopes(user: UserProjection) -> list[str]:
    """The streaks a user has: all goals together, and each live goal's own."""
    return [rules.ALL_GOALS, *(gid for gid, goal in user.goals.items() if not goal.deleted)]


def folds_from(
    user: UserProjection,
    days: Mapping[str, DayTotal],
    start: date,
    until: date,
    base: Mapping[str, rules.Fold],
) -> dict[str, rules.Fold]:
    """Every scope's fold of the days before ``until``, from ``base`` (the days before
    ``start``) and ``days`` (every day of [start, until) with minutes); with the frozen
    dates of :data:`rules.HORIZON_DAYS` before ``until`` (``rules.kept_frozen``)."""
    since = rules.horizon(until)
    return {
        scope: rules.kept_frozen(
            rules.advance(
                base.get(scope) or rules.Fold(),
                rules.Calendar.of(user.day_settings, user.breaks, scope),
                scope_minutes(days, scope),
                start,
                until,
            ),
            since,
        )
        for scope in scopes(user)
    }


@dataclass(frozen=True)
class LogChange:
    """A log event: the log's new state, and the date it moved away from (if it moved)."""

    log_id: str
    entry: LogEntry
    moved_from: str | None

    @property
    def date_before(self) -> str | None:
        """The date of the log's state before this event; None for its creation."""
        if self.moved_from is not None:
            return self.moved_from
        return self.entry.date if self.entry.deleted else None

    def placements(self) -> list[LogEntry]:
        """The entries this event puts in months: the new state on its date's month, and
        the log gone from the month it moved away from."""
        entries = [self.entry]
        if self.moved_from is not None and month_of(self.moved_from) != month_of(self.entry.date):
            entries.append(self.entry.model_copy(update={"date": self.moved_from, "deleted": True}))
        return entries

    def overtook(self, months: Mapping[str, MonthDays]) -> bool:
        """Whether the log's previous state is not where this event says it was (all of
        its months are in ``months``): an earlier event of it is still missing, or this one
        is redelivered. Either way the log may sit in months this event does not name."""
        before = self.date_before
        if before is None:
            return False
        held = months[month_of(before)].logs.get(self.log_id)
        return held is None or held.deleted or held.version >= self.entry.version

    def may_return_dropped(self, months: Mapping[str, MonthDays]) -> bool:
        """Whether this event puts the log live in a month that does not hold it but may
        have dropped its deleted entry (:class:`MonthDays`): then it may be an old event
        of a log since deleted or moved, which only every month of the user can tell."""
        month = months[month_of(self.entry.date)]
        return (
            not self.entry.deleted
            and self.log_id not in month.logs
            and month.may_have_dropped(self.log_id)
        )

    def live_version(self, months: Mapping[str, MonthDays]) -> int | None:
        """After :meth:`may_return_dropped`, with every month of the user in ``months``:
        the highest version at which a month holds the log live; None when none does."""
        live = [
            m.logs[self.log_id].version
            for m in months.values()
            if self.log_id in m.logs and not m.logs[self.log_id].deleted
        ]
        return max(live, default=None)


def log_change(payload: object, kind: EventType) -> LogChange | None:
    """The change a log event makes; None for any other event."""
    if isinstance(payload, LogPayload) and kind in (EventType.LOG_CREATED, EventType.LOG_DELETED):
        entry = LogEntry(
            goal_id=payload.goal_id,
            date=payload.date.isoformat(),
            minutes=payload.minutes,
            version=payload.version,
            deleted=kind is EventType.LOG_DELETED,
        )
        return LogChange(payload.log_id, entry, None)
    if isinstance(payload, LogUpdatedPayload):
        entry = LogEntry(
            goal_id=payload.new.goal_id,
            date=payload.new.date.isoformat(),
            minutes=payload.new.minutes,
            version=payload.version,
        )
        return LogChange(payload.log_id, entry, payload.old.date.isoformat())
    return None


class ProjectionService:
    def __init__(
        self,
        repo: ProjectionRepository,
        clock: Clock | None = None,
        log_is_live: LogLookup | None = None,
    ) -> None:
        self.repo = repo
        self.log_is_live = log_is_live
        self.clock = clock or Clock()
        """Where the window of recent days ends: the users' "today" (tests move it)."""

    async def handle(self, envelope: Envelope) -> None:
        """The consumer's handler; raises UnknownEventError for a version it does not know."""
        await self.handle_batch([envelope])

    async def handle_batch(self, envelopes: list[Envelope]) -> None:
        """Events of one user, in stream order: the same as handling each in turn.

        Each run of consecutive log events is applied in one attempt (one read and one
        write of the user and of each month touched), which is what lets the consumer
        catch up with a backlog: a user's burst of logs costs a few round trips."""
        run: list[LogChange] = []
        for envelope in envelopes:
            payload = envelope.typed_payload()
            change = log_change(payload, envelope.type)
            if change is not None:
                run.append(change)
                continue
            await self._apply_logs(envelope.user_id, run)
            run = []
            await self._apply(envelope, payload)
        if run:
            await self._apply_logs(envelopes[0].user_id, run)

    async def _apply_logs(self, uid: str, changes: list[LogChange]) -> None:
        if changes:
            await self._retry(lambda: self._logs(uid, changes))

    async def _apply(self, envelope: Envelope, payload: object) -> None:
        """Any event but a log's."""
        uid = envelope.user_id
        kind = envelope.type
        if kind in (EventType.USER_REGISTERED, EventType.USER_UPDATED):
            assert isinstance(payload, UserPayload)
            changes = rules.event_settings(
                payload, envelope.occurred_at, kind is EventType.USER_REGISTERED
            )
            await self._retry(lambda: self._settings(uid, changes))
        elif kind in (EventType.BREAK_CREATED, EventType.BREAK_UPDATED, EventType.BREAK_DELETED):
            assert isinstance(payload, BreakPayload)
            fact = rules.BreakFact(
                goal_id=payload.goal_id,
                start=payload.start_date,
                end=payload.end_date,
                version=payload.version,
                deleted=kind is EventType.BREAK_DELETED,
            )
            await self._retry(lambda: self._break(uid, payload.break_id, fact))
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

    async def _retry(self, attempt: Callable[[], Awaitable[bool]]) -> None:
        await retry_on_conflict(attempt, "too many concurrent changes of one user's projection")

    async def _user(self, uid: str) -> UserProjection:
        # A new user has no days yet: its window of recent days holds them all.
        return await self.repo.get_user(uid) or UserProjection(id=uid, recent_from=date.min)

    # -- users -----------------------------------------------------------------------
    async def _settings(self, uid: str, changes: list[rules.DaySettings]) -> bool:
        """A user.* event: its settings join the history (from their effective dates; its
        own state is the last of ``changes``, restored past days' come before it), which
        keeps :data:`rules.HORIZON_DAYS` before it (``rules.kept_settings``)."""
        user = await self._user(uid)
        if user.deleted:
            return True
        change = changes[-1]
        history = rules.with_all(user.day_settings, changes)
        update: dict[str, object] = {}
        dirty = None
        if history is not None:
            kept = rules.kept_settings(history, rules.horizon(change.effective))
            update["day_settings"] = kept
            # Dropped settings judge their days anew by the oldest kept: refold them all.
            first = min(c.effective for c in changes)
            dirty = first if len(kept) == len(history) else date.min
        if user.timezone_at is None or change.at > user.timezone_at:
            update |= {"timezone": change.timezone, "timezone_at": change.at}
        if not update:
            return True
        new = user.model_copy(update=update)
        return await self._recompute_and_commit(user.version, new, {}, set(), set(), dirty)

    async def _break(self, uid: str, break_id: str, fact: rules.BreakFact) -> bool:
        """A break.* event, newer than the break's state held (a deleted one stays as a
        tombstone, so a late older event cannot bring it back)."""
        user = await self._user(uid)
        held = user.breaks.get(break_id)
        if user.deleted or (held is not None and held.version >= fact.version):
            return True
        new = user.model_copy(update={"breaks": {**user.breaks, break_id: fact}})
        dirty = fact.start if held is None else min(fact.start, held.start)
        return await self._recompute_and_commit(user.version, new, {}, set(), set(), dirty)

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
        months: dict[str, MonthDays] = {}
        touched: set[str] = set()
        if goals[goal_id].deleted:
            # Its logs leave every total now; the log.deleted events of tracking's cascade
            # recompute the same days again later, which changes nothing.
            for key, month in (await self.repo.months_of_user(uid)).items():
                days = {e.date for e in month.logs.values() if e.goal_id == goal_id}
                if days:
                    months[key] = month
                    touched |= days
        return await self._recompute_and_commit(user.version, new, months, touched, set())

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
        after = await self.repo.get_user(uid)
        if after is not None and after.deleted:  # deleted while we wrote: leave nothing
            await self.repo.wipe_user_data(uid)

    # -- logs ------------------------------------------------------------------------------
    async def _logs(self, uid: str, changes: list[LogChange]) -> bool:
        user = await self._user(uid)
        if user.deleted:
            await self.repo.wipe_user_data(uid)
            return True
        touched: set[str] = set()
        for change in changes:
            touched.add(change.entry.date)
            if change.moved_from is not None:
                touched.add(change.moved_from)
        wanted = {month_of(e.date) for change in changes for e in change.placements()}
        months = await self.repo.get_months(uid, wanted)
        changed: set[str] = set()
        overtaking: list[LogChange] = []
        every_month_read = False
        for change in changes:
            if change.may_return_dropped(months):
                if not every_month_read:
                    await self._read_every_month(uid, months)
                    every_month_read = True
                if await self._is_stale(uid, change, months):
                    continue
            if change.overtook(months):
                overtaking.append(change)
            for entry in change.placements():
                did_change, held_on = place(months, change.log_id, entry)
                if did_change:
                    changed.add(month_of(entry.date))
                if held_on is not None:
                    touched.add(held_on)
        if overtaking:
            if not every_month_read:
                await self._read_every_month(uid, months)
            for change in overtaking:
                take_off_elsewhere(months, change, touched, changed)
        return await self._recompute_and_commit(user.version, user, months, touched, changed)

    async def _is_stale(self, uid: str, change: LogChange, months: Mapping[str, MonthDays]) -> bool:
        """After :meth:`LogChange.may_return_dropped`, with every month of the user in
        ``months``: whether ``change`` is an old event that must change nothing.

        Live in a month at this version or newer: it is older than what is applied. Live
        at an older version: it is the log's next state (once a log's deletion is
        applied no month holds it live: the deletion marks its month, and an overtaking
        one every month). Live nowhere, it is either the first event of a new log whose
        id sorts below a dropped one (ids are ObjectIds of several processes, or clients'
        random UUIDs: their order says nothing of age) or an old event of a log since
        deleted, its entry dropped. Tracking's document tells which, for good: a deleted
        log never comes back (a PUT of a deleted id is refused). So no late or duplicated
        event brings a deleted log back: a kept deleted entry refuses it, and otherwise
        tracking's tombstone (or its absence, once purged) does."""
        live = change.live_version(months)
        if live is not None:
            return live >= change.entry.version
        if self.log_is_live is None:
            raise LateLogEventError(
                f"log {change.log_id} (version {change.entry.version}) is live in no month "
                "of its user and its month dropped deleted entries; run "
                "momentum-analytics-rebuild --user for this user"
            )
        return not await self.log_is_live(uid, change.log_id)

    async def _read_every_month(self, uid: str, months: dict[str, MonthDays]) -> None:
        """Add every stored month of the user to ``months`` (those read already stay)."""
        for key, month in (await self.repo.months_of_user(uid)).items():
            months.setdefault(key, month)

    # -- the shared step ------------------------------------------------------------------
    async def _recompute_and_commit(
        self,
        expected_version: int,
        user: UserProjection,
        months: dict[str, MonthDays],
        touched: set[str],
        changed: set[str],
        dirty: date | None = None,
    ) -> bool:
        """Recount ``touched`` days (all in ``months``), write the changed months, commit.

        ``dirty``: the first day whose rules (settings, breaks) changed, if any."""
        for key, month in months.items():
            if recount_days(month, {d for d in touched if month_of(d) == key}, user.deleted_goals):
                changed.add(key)
        if not await self.repo.put_months(months[key] for key in sorted(changed)):
            return False
        recent, window = recent_update(user, months, touched, self.clock.now().date())
        new = user.model_copy(
            update={
                "month_totals": month_totals(user.month_totals, months.values()),
                **recent,
            }
        )
        firsts = [date.fromisoformat(d) for d in touched] + ([dirty] if dirty else [])
        folds = await self._folds(user, new, months, min(firsts, default=None), window)
        return await self.repo.commit_user(new.model_copy(update=folds), expected_version)

    async def _folds(
        self,
        before: UserProjection,
        after: UserProjection,
        months: dict[str, MonthDays],
        dirty: date | None,
        window: Mapping[str, DayTotal],
    ) -> dict[str, object]:
        """The folds up to the new window's start: moved on over the days that left the
        window (``window``: every day with minutes from the old start on), or from every
        month when a day before the old start changed, no folds are kept yet, or a scope
        has none (a goal whose logs came before its goal.created may have older days)."""
        at = after.recent_from
        if at is None:
            return {"folds": {}, "folds_at": None}
        kept = before.folds_at
        known = set(scopes(after)) <= before.folds.keys()
        if (
            known
            and kept is not None
            and kept == before.recent_from
            and (dirty is None or dirty >= kept)
        ):
            return {"folds": folds_from(after, window, kept, at, before.folds), "folds_at": at}
        every = await self.repo.months_of_user(after.id)
        every.update(months)
        days = {d: total for month in every.values() for d, total in month.days.items()}
        return {"folds": folds_from(after, days, date.min, at, {}), "folds_at": at}


def take_off_elsewhere(
    months: Mapping[str, MonthDays], change: LogChange, touched: set[str], changed: set[str]
) -> None:
    """Take the log off every month but its new date's, as of the change's version.

    An older live entry is marked gone; one already gone at this version (a first attempt
    that crashed before its commit) has its day touched again, for the user's projection."""
    version, own = change.entry.version, month_of(change.entry.date)
    for key, month in months.items():
        held = month.logs.get(change.log_id)
        if key == own or held is None:
            continue
        if not held.deleted and held.version < version:
            month.logs[change.log_id] = held.model_copy(
                update={"deleted": True, "version": version}
            )
            changed.add(key)
            touched.add(held.date)
        elif held.deleted and held.version == version:
            touched.add(held.date)


def month_totals(totals: Mapping[str, int], months: Iterable[MonthDays]) -> dict[str, int]:
    """``totals`` with these months' totals put in (a month with no minutes is left out)."""
    result = dict(totals)
    for month in months:
        if total := month.total:
            result[month.month] = total
        else:
            result.pop(month.month, None)
    return result


def recent_update(
    user: UserProjection, months: Mapping[str, MonthDays], touched: set[str], today: date
) -> tuple[dict[str, object], dict[str, DayTotal]]:
    """The user's window of recent days after the touched days changed (on ``today``,
    UTC), and every day with minutes from the window's old start on."""
    if user.recent_from is None:  # stored before the window existed: reads use the months
        return {}, {}
    first = user.recent_from.isoformat()
    days = dict(user.recent_days)
    for day in touched:
        if day >= first:
            total = months[month_of(day)].days.get(day)
            if total is None:
                days.pop(day, None)
            else:
                days[day] = total
    start, kept = recent_window(days, user.recent_from, today)
    return {"recent_from": start, "recent_days": kept}, days
