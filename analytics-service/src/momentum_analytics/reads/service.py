"""The four reads. Each costs a few lookups by ``_id`` whatever the user's history."""

import math
from datetime import date, timedelta
from typing import Literal
from zoneinfo import ZoneInfoNotFoundError

from momentum_libs import streak_rules as rules
from momentum_libs.clock import Clock
from momentum_libs.problems import ProblemError, validation_problem

from momentum_analytics.projections.models import DayTotal, UserProjection
from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.projections.service import scope_minutes
from momentum_analytics.reads.schemas import (
    ActiveGoalOut,
    Dashboard,
    DayMinutes,
    Freezes,
    Heatmap,
    HeatmapDay,
    Streak,
    StreakRun,
    StreakRuns,
    StreakToday,
    WeeklySummary,
)

MAX_HEATMAP_DAYS = rules.HORIZON_DAYS
DEFAULT_HEATMAP_DAYS = 365


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def months_between(first: date, last: date) -> list[str]:
    """Each "YYYY-MM" from ``first``'s month to ``last``'s."""
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def progress(logged: int, target: int | None) -> float | None:
    return None if not target else round(100 * logged / target, 1)


class Settled:
    """A scope's streak as of today: the fold of the days before it, and what folded it."""

    def __init__(
        self, fold: rules.Fold, calendar: rules.Calendar, minutes: dict[date, int], today: date
    ) -> None:
        self.fold, self.calendar, self.minutes, self.today = fold, calendar, minutes, today

    def view(self) -> rules.StreakView:
        return rules.view(self.fold, self.calendar, self.minutes, self.today)


class ReadService:
    def __init__(self, repo: ProjectionRepository, clock: Clock | None = None) -> None:
        self.repo = repo
        self.clock = clock or Clock()

    def _today(self, user: UserProjection) -> date:
        """The user's local today on the service's clock, by their day settings."""
        try:
            return rules.user_today(user.day_settings, self.clock.now(), user.timezone).date
        except (ZoneInfoNotFoundError, ValueError):  # a zone this host's tzdata lacks
            return rules.user_today([], self.clock.now()).date

    def _grace(self, user: UserProjection) -> rules.Grace | None:
        try:
            return rules.grace(user.day_settings, self.clock.now())
        except (ZoneInfoNotFoundError, ValueError):  # as in _today
            return None

    def _scope(self, user: UserProjection, goal_id: str | None) -> str:
        if goal_id is None:
            return rules.ALL_GOALS
        known = user.goals.get(goal_id)
        if known is None or known.deleted:
            raise ProblemError(404, "Goal not found.")
        return goal_id

    async def _streak_now(
        self, user: UserProjection, scope: str, since: date | None = None
    ) -> tuple[Settled, rules.StreakView]:
        """The scope's streak now: on the user's today, or for rules.GRACE after a change of
        settings on the today of the settings before it, when that one keeps the streak
        and the new one does not (rules.grace_view). ``since``: see _settled."""
        today = self._today(user)
        settled = await self._settled(user, scope, today, since)
        current = settled.view()
        grace = self._grace(user)
        if grace is None or grace.today.date >= today:
            return settled, current
        old = await self._settled(user, scope, grace.today.date, since)
        kept = rules.grace_view(old.fold, settled.fold, old.calendar, old.minutes, grace, today)
        return (settled, current) if kept is None else (old, kept)

    async def _settled(
        self, user: UserProjection, scope: str, today: date, since: date | None = None
    ) -> Settled:
        """The scope's fold up to today: the kept fold and the recent days on top of it
        (flat in history); when the fold is not kept for a today that late (a projection
        older than it, a clock moved back), or ``since`` (the first day whose frozen state
        is wanted) is older than the frozen dates it keeps, from every month."""
        at = user.folds_at
        base: rules.Fold | None
        days: dict[str, DayTotal]
        kept = at is not None and (since is None or since >= rules.horizon(at))
        if kept and at is not None and at == user.recent_from and at <= today:
            base, start, days = user.folds.get(scope), at, user.recent_days
        else:
            every = await self.repo.months_of_user(user.id)
            base, start = None, date.min
            days = {d: total for m in every.values() for d, total in m.days.items()}
        calendar = rules.Calendar.of(user.day_settings, user.breaks, scope)
        minutes = scope_minutes(days, scope)
        fold = rules.advance(base or rules.Fold(), calendar, minutes, start, today)
        return Settled(fold, calendar, minutes, today)

    async def _user(self, user_id: str) -> UserProjection:
        user = await self.repo.get_user(user_id)
        if user is None or user.deleted:
            return UserProjection(id=user_id, recent_from=date.min)  # no days at all
        return user

    async def _minutes(
        self, user: UserProjection, first: date, last: date, goal_id: str | None
    ) -> list[tuple[date, int]]:
        """Every date of [first, last] with its minutes (one goal's, or all goals')."""
        if user.recent_from is not None and first >= user.recent_from:
            days = user.recent_days  # the current week: no other document to read
        else:
            months = await self.repo.get_months(user.id, months_between(first, last))
            days = {d: total for m in months.values() for d, total in m.days.items()}
        result: list[tuple[date, int]] = []
        for n in range((last - first).days + 1):  # no day after ``last``: it may be date.max
            day = first + timedelta(days=n)
            total = days.get(day.isoformat())
            minutes = 0
            if total is not None:
                minutes = total.t if goal_id is None else total.g.get(goal_id, 0)
            result.append((day, minutes))
        return result

    async def _target(self, user: UserProjection, goal_id: str, week_start: date) -> int | None:
        if goal_id in user.deleted_goals:
            return None
        live = [
            t
            for t in await self.repo.targets_for(user.id, goal_id, week_start.isoformat())
            if not t.deleted
        ]
        return max(live, key=lambda t: t.version).target_minutes if live else None

    async def dashboard(self, user_id: str) -> Dashboard:
        user = await self._user(user_id)
        today = self._today(user)
        _, streak = await self._streak_now(user, rules.ALL_GOALS)
        start = week_of(today)
        end = start + timedelta(days=6)
        goal = user.active_goal
        # No active goal: the week of all goals together, with no target to measure it by.
        goal_id = None if goal is None else goal.id
        target = None if goal_id is None else await self._target(user, goal_id, start)
        logged = sum(m for _, m in await self._minutes(user, start, end, goal_id))
        total = user.total_minutes
        return Dashboard(
            active_goal=None if goal is None else ActiveGoalOut(id=goal.id, title=goal.title),
            week_start=start,
            week_end=end,
            weekly_target_minutes=target,
            weekly_logged_minutes=logged,
            weekly_progress_percent=progress(logged, target),
            current_streak=streak.current,
            longest_streak=streak.longest,
            total_minutes=total,
            total_hours=round(total / 60, 2),
        )

    async def weekly_summary(
        self, user_id: str, week_start: date | None, goal_id: str | None
    ) -> WeeklySummary:
        if week_start is not None and week_start.weekday() != 0:
            raise validation_problem(["query", "week_start"], "week_start must be a Monday.")
        user = await self._user(user_id)
        start = week_start or week_of(self._today(user))
        if start > date.max - timedelta(days=6):
            raise validation_problem(["query", "week_start"], "That week ends after 9999-12-31.")
        end = start + timedelta(days=6)
        if goal_id is not None:
            known = user.goals.get(goal_id)
            if known is None or known.deleted:
                raise ProblemError(404, "Goal not found.")
        else:
            goal_id = user.active_goal.id if user.active_goal else None
        days = await self._minutes(user, start, end, goal_id)
        target = None if goal_id is None else await self._target(user, goal_id, start)
        logged = sum(m for _, m in days)
        return WeeklySummary(
            week_start=start,
            week_end=end,
            goal_id=goal_id,
            target_minutes=target,
            logged_minutes=logged,
            progress_percent=progress(logged, target),
            active_days=sum(1 for _, m in days if m > 0),
            days=[DayMinutes(date=d, minutes=m) for d, m in days],
        )

    async def streak(self, user_id: str, goal_id: str | None = None) -> Streak:
        user = await self._user(user_id)
        scope = self._scope(user, goal_id)
        _, streak = await self._streak_now(user, scope)
        return Streak(
            current_streak=streak.current,
            longest_streak=streak.longest,
            last_activity_date=streak.last_active,
            goal_id=goal_id,
            today=StreakToday(date=streak.today, status=streak.status),
            at_risk=streak.at_risk,
            expires_at=streak.expires_at,
            freezes=Freezes(
                available=streak.freezes, max=rules.MAX_FREEZES, next_in_days=streak.next_in_days
            ),
        )

    async def streaks(
        self, user_id: str, goal_id: str | None, order: Literal["longest", "recent"], limit: int
    ) -> StreakRuns:
        """The runs, the one going on included: the longest first, or the latest first."""
        user = await self._user(user_id)
        scope = self._scope(user, goal_id)
        settled, streak = await self._streak_now(user, scope)
        ended = {(r.start, r.end) for r in streak.runs}
        runs = [*streak.runs, *(r for r in settled.fold.best if (r.start, r.end) not in ended)]
        if order == "longest":
            runs.sort(key=lambda r: (-r.length, -r.end.toordinal()))
        else:
            runs.sort(key=lambda r: r.end, reverse=True)
        return StreakRuns(
            items=[StreakRun(start=r.start, end=r.end, length=r.length) for r in runs[:limit]]
        )

    async def heatmap(self, user_id: str, first: date | None, last: date | None) -> Heatmap:
        user = await self._user(user_id)
        if last is None:
            if first is None:
                last = self._today(user)
            else:
                last = first + timedelta(
                    days=min(DEFAULT_HEATMAP_DAYS - 1, (date.max - first).days)
                )
        if first is None:
            first = last - timedelta(days=min(DEFAULT_HEATMAP_DAYS - 1, (last - date.min).days))
        if first > last:
            raise validation_problem(["query", "from"], "from must not be after to.")
        if (last - first).days + 1 > MAX_HEATMAP_DAYS:
            raise validation_problem(
                ["query", "to"], f"The range may span at most {MAX_HEATMAP_DAYS} days."
            )
        days = await self._minutes(user, first, last, None)
        # The streak's today, which a grace may keep on the old settings' (rules.grace).
        settled, _ = await self._streak_now(user, rules.ALL_GOALS, first)
        today = settled.today
        minutes = {**settled.minutes, **dict(days)}
        busiest = max((m for _, m in days), default=0)
        return Heatmap(
            from_=first,
            to=last,
            max_minutes=busiest,
            days=[
                HeatmapDay(
                    date=d,
                    minutes=m,
                    level=0 if m == 0 else math.ceil(4 * m / busiest),
                    state=rules.day_state(settled.fold, settled.calendar, minutes, d, today),
                )
                for d, m in days
            ],
        )
