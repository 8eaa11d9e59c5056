"""The local day: DST examples stated by hand, then properties over every IANA zone."""

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from momentum_libs.localday import (
    DayFloor,
    day_bounds,
    local_day,
    parse_day_start,
    today,
    wall_to_utc,
    zone,
)

NY = zone("America/New_York")
BERLIN = zone("Europe/Berlin")
H = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("tz", "day", "start", "starts_at", "hours"),
    [
        # New York springs forward at 02:00 EST on 2026-03-08: that day has 23 hours.
        ("America/New_York", date(2026, 3, 8), "00:00", utc(2026, 3, 8, 5), 23),
        # 02:30 does not exist that day: the day begins at the end of the gap, 03:00 EDT.
        ("America/New_York", date(2026, 3, 8), "02:30", utc(2026, 3, 8, 7), 23.5),
        # It falls back at 02:00 EDT on 2026-11-01: 25 hours; 01:30 happens twice, the
        # first (EDT) begins the day, and the next day begins at 01:30 EST.
        ("America/New_York", date(2026, 11, 1), "00:00", utc(2026, 11, 1, 4), 25),
        ("America/New_York", date(2026, 11, 1), "01:30", utc(2026, 11, 1, 5, 30), 25),
        # Berlin: forward at 02:00 CET on 2026-03-29, back at 03:00 CEST on 2026-10-25.
        ("Europe/Berlin", date(2026, 3, 29), "00:00", utc(2026, 3, 28, 23), 23),
        ("Europe/Berlin", date(2026, 3, 29), "02:15", utc(2026, 3, 29, 1), 23.25),
        ("Europe/Berlin", date(2026, 10, 25), "02:30", utc(2026, 10, 25, 0, 30), 25),
        ("Pacific/Kiritimati", date(2026, 6, 1), "00:00", utc(2026, 5, 31, 10), 24),
        ("Pacific/Pago_Pago", date(2026, 6, 1), "06:00", utc(2026, 6, 1, 17), 24),
        ("Asia/Kathmandu", date(2026, 6, 1), "00:00", utc(2026, 5, 31, 18, 15), 24),
        # Samoa skipped 2011-12-30 altogether: a day of no length.
        ("Pacific/Apia", date(2011, 12, 30), "00:00", utc(2011, 12, 30, 10), 0),
    ],
)
def test_day_bounds(tz: str, day: date, start: str, starts_at: datetime, hours: float) -> None:
    bounds = day_bounds(day, zone(tz), parse_day_start(start))
    assert bounds.starts_at == starts_at
    assert bounds.ends_at - bounds.starts_at == timedelta(hours=hours)


def test_before_day_start_today_is_still_yesterday() -> None:
    at_0230 = datetime(2026, 6, 10, 2, 30, tzinfo=BERLIN)
    assert local_day(at_0230, BERLIN, time(4)).date == date(2026, 6, 9)
    assert local_day(at_0230, BERLIN, time(0)).date == date(2026, 6, 10)


def test_the_second_pass_of_an_overlap_is_already_the_new_day() -> None:
    """01:15 EST on 2026-11-01 comes after 01:30 EDT, which began the day."""
    second_0115 = utc(2026, 11, 1, 6, 15)
    assert local_day(second_0115, NY, time(1, 30)).date == date(2026, 11, 1)
    first_0115 = utc(2026, 11, 1, 5, 15)
    assert local_day(first_0115, NY, time(1, 30)).date == date(2026, 10, 31)


@pytest.mark.parametrize("bad", ["6:00", "06:01", "06:15", "07:00", "24:00", "ab:cd", "0000", ""])
def test_day_start_refuses(bad: str) -> None:
    with pytest.raises(ValueError, match="must be"):
        parse_day_start(bad)


def test_a_floor_keeps_today_from_going_back() -> None:
    """At 02:30 on 10 June, moving day_start from 00:00 to 04:00 would make it 9 June
    again: today stays 10 June, from the start it had to its end under 04:00."""
    now = datetime(2026, 6, 10, 2, 30, tzinfo=BERLIN)
    before = local_day(now, BERLIN, time(0))
    floor = DayFloor(before.date, before.starts_at)
    day = today(now, BERLIN, time(4), floor)
    assert (day.date, day.starts_at) == (date(2026, 6, 10), before.starts_at)
    assert day.ends_at == datetime(2026, 6, 11, 4, tzinfo=BERLIN)
    # Once the new settings reach the floor, it no longer matters.
    later = now + timedelta(hours=30)
    assert today(later, BERLIN, time(4), floor) == local_day(later, BERLIN, time(4))


@cache
def _zones() -> list[str]:
    return sorted(available_timezones())


instants = st.datetimes(
    min_value=datetime(1995, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)
day_starts = st.sampled_from([time(h, m) for h in range(7) for m in (0, 15, 30, 45)][:25])


@settings(max_examples=400, deadline=None)
@given(instant=instants, name=st.sampled_from(_zones()), start=day_starts)
def test_every_instant_is_in_exactly_the_day_it_gets(
    instant: datetime, name: str, start: time
) -> None:
    tz = zone(name)
    day = local_day(instant, tz, start)
    assert day.starts_at <= instant < day.ends_at
    # Days tile time: the next day begins where this one ends.
    assert local_day(day.ends_at, tz, start).starts_at == day.ends_at
    assert local_day(day.ends_at, tz, start).date > day.date
    # A day lasts 24 hours, give or take what a transition moves (at most a day, Samoa).
    assert timedelta(0) < day.ends_at - day.starts_at <= timedelta(hours=48)
    # Its start is day_start on its date, or the first instant after a gap hiding it.
    wall = day.starts_at.astimezone(tz).replace(tzinfo=None)
    named = datetime.combine(day.date, start)
    assert wall == named or (
        wall > named
        and (day.starts_at - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) < named
    )


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2037, 12, 31)),
    name=st.sampled_from(["America/New_York", "Europe/Berlin", "Asia/Kathmandu"]),
    start=day_starts,
)
def test_a_day_lasts_23_24_or_25_hours_where_dst_moves_an_hour(
    day: date, name: str, start: time
) -> None:
    bounds = day_bounds(day, zone(name), start)
    length = bounds.ends_at - bounds.starts_at
    assert length in (23 * H, 24 * H, 25 * H) or abs(length - 24 * H) < H


@settings(max_examples=300, deadline=None)
@given(
    wall=st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2037, 12, 31)),
    name=st.sampled_from(_zones()),
)
def test_a_wall_time_names_the_first_instant_showing_it_or_after_it(
    wall: datetime, name: str
) -> None:
    tz = zone(name)
    wall = wall.replace(microsecond=0)
    instant = wall_to_utc(wall, tz)
    shown = instant.astimezone(tz).replace(tzinfo=None)
    just_before = (instant - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None)
    # It shows the wall time (later only when a gap hides it), and the second before it
    # still showed an earlier time: the first occurrence, or the gap's end.
    assert just_before < wall <= shown
