"""A user's local day: which date "today" is, and the two UTC instants it runs between.

A user's day runs from ``day_start`` (a wall-clock time, 00:00-06:00) on its date to
``day_start`` on the next date, in the user's IANA timezone. So a day lasts 24 hours,
or 23 or 25 across a DST change, and at 02:30 with ``day_start`` 04:00 "today" is still
yesterday's date. Two DST rules, for a ``day_start`` that the change makes odd:

- one that does not exist (in a spring-forward gap) begins the day at the first instant
  after the gap;
- one that occurs twice (in a fall-back overlap) begins it at the first occurrence.

A date a timezone skipped altogether (Pacific/Apia 2011-12-30) is a day of no length:
never "today".

This is the one computation auth (``GET /users/me/today``), tracking (break and log
date rules) and analytics share; nothing else decides what a user's today is.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

DEFAULT_DAY_START = time(0, 0)
LATEST_DAY_START = time(6, 0)
DAY_START_STEP_MINUTES = 15

WIDEST_WEST = ZoneInfo("Etc/GMT+12")
"""The westernmost offset in use (UTC-12): its today is the earliest today on Earth."""
WIDEST_EAST = ZoneInfo("Etc/GMT-14")
"""The easternmost offset in use (UTC+14, Pacific/Kiritimati): the latest today on Earth."""


@dataclass(frozen=True)
class LocalDay:
    date: date
    starts_at: datetime
    """The first instant of the day, in UTC."""
    ends_at: datetime
    """The first instant of the next day, in UTC (the day is ``[starts_at, ends_at)``)."""


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA timezone of that name (ZoneInfoNotFoundError for an unknown one)."""
    return ZoneInfo(name)


def parse_day_start(value: str) -> time:
    """``"HH:MM"``, 00:00-06:00 in 15-minute steps; ValueError for anything else."""
    if len(value) != 5 or value[2] != ":" or not (value[:2] + value[3:]).isdigit():
        raise ValueError("must be a time as HH:MM")
    parsed = time(int(value[:2]), int(value[3:]))  # ValueError for 25:00 or 10:61
    if parsed > LATEST_DAY_START or parsed.minute % DAY_START_STEP_MINUTES:
        raise ValueError("must be between 00:00 and 06:00, in steps of 15 minutes")
    return parsed


def format_day_start(value: time) -> str:
    return value.strftime("%H:%M")


def _utc_seconds(instant: datetime) -> int:
    return int(instant.timestamp())


def _offset_at(seconds: int, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(seconds, UTC).astimezone(tz).utcoffset()


def wall_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant a naive wall-clock time ``wall`` names in ``tz``, by the two DST rules:
    a time in a gap is the first instant after the gap, a time in an overlap its first
    occurrence."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # it exists; fold=0 is the first of two occurrences
    # In a gap, fold=0 reads the wall time with the offset before the change (an instant
    # after the gap) and fold=1 with the one after (an instant before it): the gap's end
    # is the first second between them whose offset is the later one.
    lo = _utc_seconds(wall.replace(tzinfo=tz, fold=1).astimezone(UTC))
    hi = _utc_seconds(first)
    after = _offset_at(hi, tz)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(mid, tz) == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def day_start_instant(day: date, tz: ZoneInfo, day_start: time) -> datetime:
    return wall_to_utc(datetime.combine(day, day_start), tz)


def day_bounds(day: date, tz: ZoneInfo, day_start: time) -> LocalDay:
    """The local day of date ``day``."""
    return LocalDay(
        day,
        day_start_instant(day, tz, day_start),
        day_start_instant(day + timedelta(days=1), tz, day_start),
    )


def local_day(instant: datetime, tz: ZoneInfo, day_start: time = DEFAULT_DAY_START) -> LocalDay:
    """The local day ``instant`` (aware) falls in."""
    wall = instant.astimezone(tz).replace(tzinfo=None)
    # A first guess, right but near a DST change; the bounds settle it.
    day = (wall - timedelta(hours=day_start.hour, minutes=day_start.minute)).date()
    while instant < day_start_instant(day, tz, day_start):
        day -= timedelta(days=1)
    while instant >= day_start_instant(day + timedelta(days=1), tz, day_start):
        day += timedelta(days=1)
    return day_bounds(day, tz, day_start)


@dataclass(frozen=True)
class DayFloor:
    """The local day a user was in when their settings last changed: its date and start."""

    date: date
    starts_at: datetime


def today(
    now: datetime,
    tz: ZoneInfo,
    day_start: time = DEFAULT_DAY_START,
    floor: DayFloor | None = None,
) -> LocalDay:
    """The user's today at ``now``, never before ``floor``.

    ``floor`` is the day the user was in when their timezone or ``day_start`` last
    changed. A change takes effect from that day on and never makes today go back to a
    past date: after moving ``day_start`` later, or the timezone west, today stays the
    floor's date (from its own start to its end under the new settings) until the new
    settings reach it. Without that, a change of settings would reopen a past day.
    """
    current = local_day(now, tz, day_start)
    if floor is None or current.date >= floor.date:
        return current
    return LocalDay(floor.date, floor.starts_at, day_bounds(floor.date, tz, day_start).ends_at)
