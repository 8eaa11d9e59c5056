"""The streak rules of issue 15, as a fold over a user's days: pure functions, no I/O.

Shared by analytics (its projections and reads) and tracking (an export's derived
streak runs), so both answer the same runs from the same days, settings and breaks.

A day of one scope (all goals, or one goal) is, by the settings in effect on its date:

- *active*: its minutes reach ``daily_goal_minutes`` (on a rest weekday or a break too);
- *skipped*: not active, a local date that was never the user's today: a change of
  timezone (or day start) that moves east across the date line, Pacific/Pago_Pago to
  Pacific/Kiritimati late in the day, jumps from today to the day after tomorrow;
- *break*: not active, on a break of that scope (a goal's streak: that goal's breaks and
  the all-goal ones; the all-goal streak: the all-goal ones only);
- *rest*: not active, on one of the rest weekdays;
- *missed*: anything else.

Folding the days in order: an active day extends the run and every 7th active day of a
run earns a freeze (at most 2 held); skipped, break and rest days change nothing; a
missed past day consumes a held freeze (it is *frozen*) or, with none held, ends the run
(and its freezes). Today is never folded as missed: it is pending until it ends. A run's length
counts its active days; it starts and ends on active days.

For :data:`GRACE` after a change of timezone or day start, the streak's today is the
one in the settings before the change when that keeps the streak (:func:`grace`): a user
who flies east does not lose the day they were still in at home.

The fold is what makes the reads flat: the projection keeps the fold of every day before
a checkpoint (``Fold``, a few runs and dates), and a read folds only the days from the
checkpoint to today, which the user's projection holds (``recent_days``).
"""

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from momentum_libs.events import PastDaySettings, UserPayload
from momentum_libs.localday import DayFloor, LocalDay, day_bounds, parse_day_start, today, zone

ONE_DAY = timedelta(days=1)
MAX_FREEZES = 2
EARN_EVERY = 7
"""Active days of a run that earn one freeze."""
RUNS_KEPT = 50
"""Ended runs kept, the most recent and the longest (what /analytics/streaks can list)."""
LOOKAHEAD_DAYS = 800
"""How far ``expires_at`` looks ahead (rest days on every weekday never expire)."""
ALL_GOALS = "*"
"""The scope key of the streak of all goals together."""
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GRACE = timedelta(hours=36)
"""How long after a change of settings the today of the settings before it may count."""
HORIZON_DAYS = 1098
"""How far back the projection keeps what judges a day (the settings history, the frozen
dates): the widest heatmap, three years, ending today."""


class Kind(StrEnum):
    ACTIVE = "active"
    SKIPPED = "skipped"
    BREAK = "break"
    REST = "rest"
    MISSED = "missed"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DaySettings(_Model):
    """The user's day settings from ``effective`` (a local date) on, as a user.* event
    said at ``at``; days before ``effective`` keep the settings they had.

    ``at`` orders the events (the newest wins); ``changed_at`` is when the settings
    changed, on the clock that chose ``effective`` (a later event that restates them, a
    rename, keeps it), and what the skipped dates and the grace are reckoned from
    (:attr:`changed`)."""

    effective: date
    at: datetime
    changed_at: datetime | None = None
    timezone: str = "UTC"
    day_start: str = "00:00"
    rest_weekdays: list[str] = []
    daily_goal_minutes: int = 1
    effective_from: datetime | None = None

    @property
    def changed(self) -> datetime:
        """The instant of the change: ``changed_at``, or for settings stated without it
        (older events and projections), the event's ``at``."""
        return self.changed_at or self.at


class BreakFact(_Model):
    goal_id: str | None
    start: date
    end: date
    version: int
    deleted: bool = False


class Run(_Model):
    start: date
    end: date
    length: int


class Fold(_Model):
    """The fold of a scope's days up to a checkpoint."""

    run: Run | None = None
    """The run going on (its last active day may be long ago: frozen and neutral days)."""
    freezes: int = 0
    first_active: date | None = None
    last_active: date | None = None
    recent: list[Run] = []
    """The last :data:`RUNS_KEPT` ended runs, oldest first."""
    best: list[Run] = []
    """The :data:`RUNS_KEPT` longest ended runs, longest first."""
    frozen: list[date] = []


def with_settings(history: list[DaySettings], change: DaySettings) -> list[DaySettings] | None:
    """The history with ``change`` in it, by effective date; None when a later event for
    that date is held already (a duplicate or a late delivery)."""
    kept = [s for s in history if s.effective != change.effective]
    if len(kept) < len(history) and any(
        s.effective == change.effective and s.at >= change.at for s in history
    ):
        return None
    return sorted([*kept, change], key=lambda s: s.effective)


RESTORED_AT = datetime(1970, 1, 1, tzinfo=UTC)
"""When restored past settings count as stated: before anything the account stated, so
they are never its current settings and never replace one of its own entries."""


def settings_change(payload: UserPayload, at: datetime, registered: bool) -> DaySettings:
    """The settings a user.* event states. Without an effective date (events older than
    the field): a registration's apply to every day, a change's from its local date."""
    effective = payload.effective_date
    if effective is None:
        effective = date.min if registered else local_date(at, payload.timezone)
    return DaySettings(
        effective=effective,
        at=at,
        timezone=payload.timezone,
        day_start=payload.day_start or "00:00",
        rest_weekdays=list(payload.rest_weekdays or []),
        daily_goal_minutes=payload.daily_goal_minutes or 1,
        effective_from=payload.effective_from,
        changed_at=payload.changed_at,
    )


def restored_settings(past: PastDaySettings) -> DaySettings:
    """An entry of a user.* event's ``restored``: settings of a day before the account."""
    return DaySettings(
        effective=past.effective_date,
        at=RESTORED_AT,
        timezone=past.timezone,
        day_start=past.day_start,
        rest_weekdays=list(past.rest_weekdays),
        daily_goal_minutes=past.daily_goal_minutes,
    )


def event_settings(payload: UserPayload, at: datetime, registered: bool) -> list[DaySettings]:
    """Every history entry a user.* event states: its restored past days', then its own."""
    restored = [restored_settings(p) for p in payload.restored or []]
    return [*restored, settings_change(payload, at, registered)]


def with_all(history: list[DaySettings], changes: list[DaySettings]) -> list[DaySettings] | None:
    """:func:`with_settings` of each change in turn; None when none changed anything."""
    changed = False
    for change in changes:
        merged = with_settings(history, change)
        if merged is not None:
            history, changed = merged, True
    return history if changed else None


def current_settings(history: list[DaySettings]) -> DaySettings | None:
    return max(history, key=lambda s: s.at, default=None)


def kept_settings(history: list[DaySettings], horizon: date) -> list[DaySettings]:
    """The history without the settings that ended before ``horizon`` (the one in effect
    on it stays, and applies to every day before it from then on).

    What bounds the history: the reads judge at most :data:`HORIZON_DAYS` back from today
    by their own settings (the widest heatmap), and the days before only count again when
    the folds are made from scratch (a log backdated that far, an import, a rebuild),
    which then judge them by the oldest settings kept. The caller refolds from scratch
    when anything is dropped, so the projection and a rebuild agree."""
    ordered = sorted(history, key=lambda s: s.effective)
    first = max((i for i, s in enumerate(ordered) if s.effective <= horizon), default=0)
    return ordered[first:]


def local_date(instant: datetime, timezone: str) -> date:
    return instant.astimezone(zone(timezone)).date()


def user_today(history: list[DaySettings], now: datetime, timezone: str = "UTC") -> LocalDay:
    """The user's today at ``now`` by their latest settings (momentum_libs.localday);
    with no settings known, midnight to midnight in ``timezone``."""
    latest = current_settings(history) or DaySettings(effective=date.min, at=now, timezone=timezone)
    return _today_by(latest, now)


def _today_by(settings: DaySettings, now: datetime) -> LocalDay:
    floor = None
    if settings.effective_from is not None:
        floor = DayFloor(settings.effective, settings.effective_from)
    return today(now, zone(settings.timezone), parse_day_start(settings.day_start), floor)


def skipped_dates(change: DaySettings) -> tuple[date, date] | None:
    """The date a change of settings jumped over, as an inclusive span: after its
    effective date (the user's today when they made it) and before the first today under
    it. Only a move east across the date line skips one (Pago Pago at 23:30 is 00:30 of
    the day after tomorrow in Kiritimati), and never more than one: offsets span 26
    hours and day starts 6, so a wider gap means :attr:`DaySettings.changed` is not the
    instant of the change (an old event's ``occurred_at``, on a clock apart from the one
    that chose its date), and nothing is skipped."""
    first_today = _today_by(change, change.changed).date
    if (first_today - change.effective).days != 2:
        return None
    return change.effective + ONE_DAY, change.effective + ONE_DAY


@dataclass(frozen=True)
class Grace:
    """The today of the settings before the latest change, while :data:`GRACE` lasts."""

    today: LocalDay
    ends_at: datetime
    """When the grace ends: the change's instant + :data:`GRACE`."""

    @property
    def day_ends_at(self) -> datetime:
        """When that today stops counting: its end, or the grace's if that is earlier."""
        return min(self.today.ends_at, self.ends_at)


def grace(history: list[DaySettings], now: datetime) -> Grace | None:
    """The old settings' today at ``now``, within :data:`GRACE` of the latest change;
    None out of it, or with no settings before that change."""
    latest = current_settings(history)
    if latest is None or not latest.changed <= now < latest.changed + GRACE:
        return None
    before = current_settings([s for s in history if s.effective < latest.effective])
    if before is None:
        return None
    return Grace(_today_by(before, now), latest.changed + GRACE)


@dataclass(frozen=True)
class Calendar:
    """What decides a scope's days but its minutes: the settings history (and the dates
    its changes skipped) and its breaks."""

    settings: list[DaySettings]
    breaks: list[tuple[date, date]]
    skipped: list[tuple[date, date]]

    @classmethod
    def of(
        cls, settings: list[DaySettings], breaks: Mapping[str, BreakFact], scope: str
    ) -> "Calendar":
        spans = [
            (b.start, b.end)
            for b in breaks.values()
            if not b.deleted and (b.goal_id is None or b.goal_id == scope)
        ]
        ordered = sorted(settings, key=lambda s: s.effective)
        # The first settings apply to every day before them too: they skipped nothing.
        skipped = [span for s in ordered[1:] if (span := skipped_dates(s)) is not None]
        return cls(ordered, spans, skipped)

    def settings_on(self, day: date) -> DaySettings | None:
        """The settings in effect on ``day``; before the first change, the first ones."""
        if not self.settings:
            return None
        i = bisect_right([s.effective for s in self.settings], day)
        return self.settings[max(i - 1, 0)]

    def kind(self, day: date, minutes: int) -> Kind:
        settings = self.settings_on(day)
        if minutes >= (settings.daily_goal_minutes if settings else 1):
            return Kind.ACTIVE
        if any(start <= day <= end for start, end in self.skipped):
            return Kind.SKIPPED
        if any(start <= day <= end for start, end in self.breaks):
            return Kind.BREAK
        if settings is not None and WEEKDAYS[day.weekday()] in settings.rest_weekdays:
            return Kind.REST
        return Kind.MISSED

    def day_end(self, day: date) -> datetime:
        """The UTC instant ``day`` ends, in the timezone and day start of its settings."""
        settings = self.settings_on(day)
        if settings is None:
            return day_bounds(day, zone("UTC"), parse_day_start("00:00")).ends_at
        return day_bounds(day, zone(settings.timezone), parse_day_start(settings.day_start)).ends_at


def horizon(day: date) -> date:
    """:data:`HORIZON_DAYS` before ``day``."""
    return day - timedelta(days=min(HORIZON_DAYS, (day - date.min).days))


def kept_frozen(fold: Fold, since: date) -> Fold:
    """``fold`` with the frozen dates from ``since`` on. Only the heatmap reads them; the
    fold's own steps never do, so older ones are dropped to bound the fold, and a heatmap
    reaching before ``since`` folds from scratch."""
    return fold.model_copy(update={"frozen": [d for d in fold.frozen if d >= since]})


def _end_run(fold: Fold) -> None:
    assert fold.run is not None
    run = fold.run
    fold.run, fold.freezes = None, 0
    fold.recent = [*fold.recent, run][-RUNS_KEPT:]
    fold.best = sorted([*fold.best, run], key=lambda r: (-r.length, r.start))[:RUNS_KEPT]


def step(fold: Fold, day: date, kind: Kind) -> None:
    """Fold one past (or, for an active today, present) day into ``fold``, in place."""
    if kind is Kind.ACTIVE:
        fold.first_active = fold.first_active or day
        fold.last_active = day
        start, length = (day, 0) if fold.run is None else (fold.run.start, fold.run.length)
        fold.run = Run(start=start, end=day, length=length + 1)
        if fold.run.length % EARN_EVERY == 0:
            fold.freezes = min(MAX_FREEZES, fold.freezes + 1)
    elif kind is Kind.MISSED and fold.run is not None:
        if fold.freezes:
            fold.freezes -= 1
            fold.frozen = [*fold.frozen, day]
        else:
            _end_run(fold)


def advance(
    fold: Fold, calendar: Calendar, minutes: Mapping[date, int], start: date, until: date
) -> Fold:
    """``fold`` (of the days before ``start``) with the days [start, until) folded in.

    With no run going on only a day with minutes can change anything: the walk jumps to
    the next one, so a long idle history costs nothing."""
    fold = fold.model_copy(deep=True)
    logged = sorted(d for d, m in minutes.items() if start <= d < until and m > 0)
    ahead = iter(logged)
    day = start
    while day < until:
        if fold.run is None:
            nxt = next((d for d in ahead if d >= day), None)
            if nxt is None:
                break
            day = nxt
        step(fold, day, calendar.kind(day, minutes.get(day, 0)))
        day += ONE_DAY
    return fold


def every_run(calendar: Calendar, minutes: Mapping[date, int], day: date) -> list[Run]:
    """Every run up to ``day`` (today), oldest first: the ones that ended and the one going
    on (with today when it is active), as :func:`view` folds them, none left out (a
    :class:`Fold` keeps only :data:`RUNS_KEPT` of each list)."""
    fold, ended = Fold(), []
    current = min((d for d, m in minutes.items() if m > 0), default=None)
    while current is not None and current <= day:
        kind = calendar.kind(current, minutes.get(current, 0))
        if current < day or kind is Kind.ACTIVE:  # today is never folded as missed
            going_on = fold.run
            step(fold, current, kind)
            if going_on is not None and fold.run is None:
                ended.append(going_on)
        current = None if current == date.max else current + ONE_DAY
    return [*ended, *([fold.run] if fold.run else [])]


TodayStatus = Literal["done", "pending", "rest", "break"]


@dataclass(frozen=True)
class StreakView:
    """What a streak read answers, from the fold of the days before today."""

    today: date
    status: TodayStatus
    current: int
    longest: int
    last_active: date | None
    at_risk: bool
    expires_at: datetime | None
    freezes: int
    next_in_days: int | None
    runs: list[Run]


_STATUS: dict[Kind, TodayStatus] = {Kind.ACTIVE: "done", Kind.BREAK: "break", Kind.REST: "rest"}


def _status(kind: Kind) -> TodayStatus:
    return _STATUS.get(kind, "pending")


def view(
    settled: Fold,
    calendar: Calendar,
    minutes: Mapping[date, int],
    day: date,
    day_ends_at: datetime | None = None,
) -> StreakView:
    """The streak on ``day`` (today), given the fold of every day before it.

    ``day_ends_at``: when today ends, if not by its own settings (a grace's old today)."""
    kind = calendar.kind(day, minutes.get(day, 0))
    after = settled.model_copy(deep=True)
    if kind is Kind.ACTIVE:
        step(after, day, kind)
    current = after.run.length if after.run else 0
    runs = [*after.recent, *([after.run] if after.run else [])]
    return StreakView(
        today=day,
        status=_status(kind),
        current=current,
        longest=max([current, *(r.length for r in after.best)]),
        last_active=after.last_active,
        at_risk=current > 0 and kind is Kind.MISSED and settled.freezes == 0,
        expires_at=(
            _expires_at(after, calendar, minutes, day, kind, day_ends_at) if current else None
        ),
        freezes=after.freezes,
        next_in_days=None if after.freezes >= MAX_FREEZES else EARN_EVERY - current % EARN_EVERY,
        runs=runs,
    )


def _expires_at(
    after: Fold,
    calendar: Calendar,
    minutes: Mapping[date, int],
    day: date,
    kind: Kind,
    day_ends_at: datetime | None,
) -> datetime | None:
    """The end of the first day, from today, that would end the run if nothing more were
    logged (logs already made for later days count); None if none does in the lookahead."""
    fold = after.model_copy(deep=True)
    first = day if kind is Kind.MISSED else day + ONE_DAY
    for n in range(LOOKAHEAD_DAYS):
        d = first + timedelta(days=n)
        step(fold, d, calendar.kind(d, minutes.get(d, 0)))
        if fold.run is None:
            return day_ends_at if d == day and day_ends_at else calendar.day_end(d)
    return None


def grace_view(
    old: Fold, new: Fold, calendar: Calendar, minutes: Mapping[date, int], grace: Grace, day: date
) -> StreakView | None:
    """The streak on a grace's old today (``old``: the fold of the days before it), when
    that one keeps the streak where the new today ``day`` (``new``: the fold of the days
    before it) does not; None when the new today stands.

    The new today would judge the days from the old today on as past: it does not keep
    the streak when one of them is missed while the run goes on, spending a freeze or
    ending the run, though it is still today in the old settings. The streak then lives
    while it lives on either today, and on the old one until the grace ends at most."""
    if not _missed_before(old, calendar, minutes, grace.today.date, day):
        return None
    kept = view(old, calendar, minutes, grace.today.date, grace.day_ends_at)
    in_old = min(kept.expires_at or grace.ends_at, grace.ends_at)
    if new.run is None or old.run is None or new.run.start != old.run.start:
        return replace(kept, expires_at=in_old)  # the new today's run is another one
    on_new = view(new, calendar, minutes, day).expires_at  # kept by a freeze there
    return replace(kept, expires_at=None if on_new is None else max(in_old, on_new))


def _missed_before(
    fold: Fold, calendar: Calendar, minutes: Mapping[date, int], first: date, until: date
) -> bool:
    """Whether folding [first, until) onto ``fold`` meets a missed day while a run goes on."""
    fold = fold.model_copy(deep=True)
    day = first
    while day < until:
        kind = calendar.kind(day, minutes.get(day, 0))
        if kind is Kind.MISSED and fold.run is not None:
            return True
        step(fold, day, kind)
        day += ONE_DAY
    return False


def day_state(
    settled: Fold, calendar: Calendar, minutes: Mapping[date, int], day: date, today_: date
) -> str:
    """A heatmap day's state, given the fold of every day before today."""
    if day > today_:
        return "future"
    kind = calendar.kind(day, minutes.get(day, 0))
    if kind is Kind.ACTIVE:
        return "active"
    if day == today_:
        # As the streak's today: a rest, break or skipped day asks for nothing.
        return "pending" if kind is Kind.MISSED else kind.value
    if settled.first_active is None or day < settled.first_active:
        return "none"
    if kind is not Kind.MISSED:
        return kind.value
    return "frozen" if day in settled.frozen else "missed"
