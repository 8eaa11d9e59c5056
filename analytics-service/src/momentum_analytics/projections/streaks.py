"""Streaks as runs of consecutive active days: pure functions, no I/O.

A user's streak state keeps the most recent runs exactly (``runs``, oldest first) and
summarises everything older in ``longest_before``. ``runs_from`` is the first day the
runs cover: every run that starts on or after it is in ``runs`` and the day before it is
inactive, so no run crosses it. ``runs_from`` is None while ``runs`` holds every run.

A change on a day at or after ``runs_from`` updates the runs in place (interval
arithmetic, no history read); a change before it needs a full recompute from the
day totals. The current streak is derived at read time from the runs and "today".
"""

from collections.abc import Iterable
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict

MAX_RUNS = 8
ONE_DAY = timedelta(days=1)


class Run(BaseModel):
    model_config = ConfigDict(extra="ignore")

    start: date
    end: date

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1


class StreakState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    runs: list[Run] = []
    runs_from: date | None = None
    longest_before: int = 0


def _truncated(runs: list[Run], runs_from: date | None, longest_before: int) -> StreakState:
    runs = sorted(runs, key=lambda r: r.start)
    if len(runs) > MAX_RUNS:
        dropped, runs = runs[: len(runs) - MAX_RUNS], runs[len(runs) - MAX_RUNS :]
        longest_before = max([longest_before, *(r.length for r in dropped)])
        runs_from = runs[0].start
    return StreakState(runs=runs, runs_from=runs_from, longest_before=longest_before)


def from_active_days(days: Iterable[date]) -> StreakState:
    """The full state from every active day (any order)."""
    runs: list[Run] = []
    for day in sorted(set(days)):
        if runs and runs[-1].end + ONE_DAY == day:
            runs[-1] = Run(start=runs[-1].start, end=day)
        else:
            runs.append(Run(start=day, end=day))
    return _truncated(runs, None, 0)


def is_active(state: StreakState, day: date) -> bool | None:
    """Whether ``day`` is active per the runs; None when the runs do not cover it."""
    if state.runs_from is not None and day < state.runs_from:
        return None
    return any(r.start <= day <= r.end for r in state.runs)


def with_day(state: StreakState, day: date, active: bool) -> StreakState | None:
    """The state after ``day`` became (in)active; None when that needs a full recompute."""
    known = is_active(state, day)
    if known is None:
        return None
    if known == active:
        return state
    # Removing the first day of the covered range keeps ``runs_from``: the day before it
    # stays inactive, so no run crosses it.
    runs = list(state.runs)
    if active:
        left = next((r for r in runs if r.end + ONE_DAY == day), None)
        right = next((r for r in runs if r.start - ONE_DAY == day), None)
        start = left.start if left else day
        end = right.end if right else day
        runs = [r for r in runs if r is not left and r is not right]
        runs.append(Run(start=start, end=end))
    else:
        hit = next(r for r in runs if r.start <= day <= r.end)
        runs = [r for r in runs if r is not hit]
        if hit.start < day:
            runs.append(Run(start=hit.start, end=day - ONE_DAY))
        if day < hit.end:
            runs.append(Run(start=day + ONE_DAY, end=hit.end))
    return _truncated(runs, state.runs_from, state.longest_before)


def longest(state: StreakState) -> int:
    return max([state.longest_before, *(r.length for r in state.runs)])


def last_active(state: StreakState) -> date | None:
    return max((r.end for r in state.runs), default=None)


def current(state: StreakState, today: date) -> int:
    """The run ending today, or yesterday when today has nothing; days after today are ignored."""
    for anchor in (today, today - ONE_DAY):
        for run in state.runs:
            if run.start <= anchor <= run.end:
                return (anchor - run.start).days + 1
    return 0
