"""The pure streak engine (projections/rules.py): each rule of issue 15 on its own, and a
property: random logs, breaks, setting changes and timezone moves folded in two pieces
(as the projection keeps a checkpoint and a read folds the recent days on top) agree with
an independent reference below that recomputes every day from scratch.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from momentum_libs import localday
from momentum_libs import streak_rules as rules
from momentum_libs.localday import DayFloor, day_bounds, parse_day_start, zone
from momentum_libs.streak_rules import BreakFact, Calendar, DaySettings, Fold

MON = date(2026, 3, 2)  # a Monday
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cal(
    rest: tuple[str, ...] = (),
    goal: int = 1,
    breaks: tuple[tuple[date, date], ...] = (),
    tz: str = "UTC",
) -> Calendar:
    history = [
        DaySettings(
            effective=date.min,
            at=T0,
            rest_weekdays=list(rest),
            daily_goal_minutes=goal,
            timezone=tz,
        )
    ]
    facts = {
        f"b{i}": BreakFact(goal_id=None, start=s, end=e, version=1)
        for i, (s, e) in enumerate(breaks)
    }
    return Calendar.of(history, facts, rules.ALL_GOALS)


def on(*offsets: int, minutes: int = 30) -> dict[date, int]:
    return {MON + timedelta(days=n): minutes for n in offsets}


def streak(calendar: Calendar, minutes: dict[date, int], today: int) -> rules.StreakView:
    day = MON + timedelta(days=today)
    return rules.view(
        rules.advance(Fold(), calendar, minutes, date.min, day), calendar, minutes, day
    )


def test_a_day_is_active_when_its_minutes_reach_the_daily_goal() -> None:
    minutes = {MON: 29, MON + timedelta(days=1): 30}
    view = streak(cal(goal=30), minutes, 1)
    assert (view.current, view.status, view.last_active) == (1, "done", MON + timedelta(days=1))
    assert streak(cal(goal=31), minutes, 1).current == 0


def test_rest_weekdays_neither_break_nor_extend_and_an_active_rest_day_counts() -> None:
    # Mon..Fri active, Sat and Sun rest, Mon active: 6; with Sat logged: 7.
    view = streak(cal(rest=("sat", "sun")), on(0, 1, 2, 3, 4, 7), 7)
    assert view.current == 6
    assert streak(cal(rest=("sat", "sun")), on(0, 1, 2, 3, 4, 5, 7), 7).current == 7
    assert streak(cal(), on(0, 1, 2, 3, 4, 7), 7).current == 1  # no rest days: broken


def test_break_days_neither_break_nor_extend() -> None:
    trip = ((MON + timedelta(days=2), MON + timedelta(days=5)),)
    assert streak(cal(breaks=trip), on(0, 1, 6), 6).current == 3
    assert streak(cal(breaks=trip), on(0, 1, 3, 6), 6).current == 4  # logged on the trip


def test_freezes_are_earned_every_7_active_days_at_most_2_and_cover_past_misses() -> None:
    week = on(*range(7))
    after = streak(cal(), week, 6)
    assert (after.freezes, after.next_in_days) == (1, 7)
    # Day 7 missed (past) is frozen; day 8 active: the run goes on, 8 active days.
    view = streak(cal(), {**week, **on(8)}, 8)
    assert (view.current, view.freezes) == (8, 0)
    fold = rules.advance(Fold(), cal(), {**week, **on(8)}, date.min, MON + timedelta(days=9))
    assert fold.frozen == [MON + timedelta(days=7)]
    # 21 active days earn 3, but only 2 are held: three misses in a row break the run.
    three = on(*range(21))
    full = streak(cal(), three, 21)
    assert (full.freezes, full.next_in_days) == (2, None)  # none to earn while 2 are held
    assert streak(cal(), {**three, **on(24)}, 24).current == 1
    assert streak(cal(), {**three, **on(23)}, 23).current == 22


def test_today_is_pending_never_frozen_and_at_risk_without_a_freeze() -> None:
    view = streak(cal(), on(0, 1, 2), 3)
    assert (view.status, view.current, view.at_risk) == ("pending", 3, True)
    assert view.expires_at == datetime(2026, 3, 6, tzinfo=UTC)  # the end of today
    held = streak(cal(), on(*range(7)), 7)
    assert (held.current, held.at_risk, held.freezes) == (7, False, 1)
    assert held.expires_at == datetime(2026, 3, 11, tzinfo=UTC)  # today frozen, then ends


def test_expires_at_skips_rest_days_and_breaks_ahead() -> None:
    # Friday done; Sat, Sun rest: the next day that can end the streak is Monday.
    view = streak(cal(rest=("sat", "sun"), tz="America/New_York"), on(4), 4)
    assert view.status == "done"
    # Monday 2026-03-09 ends at midnight New York time, EDT since 2026-03-08: 04:00Z.
    assert view.expires_at == datetime(2026, 3, 10, 4, tzinfo=UTC)
    assert streak(cal(), {}, 4).expires_at is None  # no streak
    every = tuple(rules.WEEKDAYS)
    assert streak(cal(rest=every), on(4), 4).expires_at is None  # nothing ever ends it


def test_settings_apply_from_their_effective_date_only() -> None:
    history = [
        DaySettings(effective=date.min, at=T0, daily_goal_minutes=10),
        DaySettings(
            effective=MON + timedelta(days=2), at=T0 + timedelta(days=60), daily_goal_minutes=60
        ),
    ]
    calendar = Calendar.of(history, {}, rules.ALL_GOALS)
    # 20 minutes a day: active under the old goal (days 0, 1), not under the new one.
    minutes = on(0, 1, 2, minutes=20)
    view = rules.view(
        rules.advance(Fold(), calendar, minutes, date.min, MON + timedelta(days=2)),
        calendar,
        minutes,
        MON + timedelta(days=2),
    )
    assert (view.current, view.status) == (2, "pending")


def test_a_goal_streak_counts_its_own_breaks_and_the_all_goal_ones() -> None:
    history = [DaySettings(effective=date.min, at=T0)]
    breaks = {
        "mine": BreakFact(
            goal_id="g1", start=MON + timedelta(days=1), end=MON + timedelta(days=1), version=1
        ),
        "other": BreakFact(
            goal_id="g2", start=MON + timedelta(days=2), end=MON + timedelta(days=2), version=1
        ),
        "all": BreakFact(
            goal_id=None, start=MON + timedelta(days=3), end=MON + timedelta(days=3), version=1
        ),
        "gone": BreakFact(
            goal_id=None,
            start=MON + timedelta(days=4),
            end=MON + timedelta(days=4),
            version=2,
            deleted=True,
        ),
    }
    g1 = Calendar.of(history, breaks, "g1")
    assert [g1.kind(MON + timedelta(days=n), 0) for n in range(5)] == [
        rules.Kind.MISSED,
        rules.Kind.BREAK,
        rules.Kind.MISSED,
        rules.Kind.BREAK,
        rules.Kind.MISSED,
    ]
    everyone = Calendar.of(history, breaks, rules.ALL_GOALS)
    assert [everyone.kind(MON + timedelta(days=n), 0) for n in range(5)] == [
        rules.Kind.MISSED,
        rules.Kind.MISSED,
        rules.Kind.MISSED,
        rules.Kind.BREAK,
        rules.Kind.MISSED,
    ]


def test_heatmap_states() -> None:
    calendar = cal(rest=("sat",), breaks=((MON + timedelta(days=9), MON + timedelta(days=9)),))
    minutes = on(2, 3, 4, 5, 6, 7, 8, 11, 13)  # days 2..8: 7 active, a freeze
    today = MON + timedelta(days=13)
    settled = rules.advance(Fold(), calendar, minutes, date.min, today)
    states = [
        rules.day_state(settled, calendar, minutes, MON + timedelta(days=n), today)
        for n in range(15)
    ]
    assert states == [
        "none",
        "none",
        "active",
        "active",
        "active",
        "active",
        "active",
        "active",
        "active",
        "break",
        "frozen",
        "active",
        "rest",
        "active",
        "future",
    ]
    # Today as the streak's today.status says: a rest or break day asks for nothing, any
    # other day not active yet is pending.
    for n, state in ((12, "rest"), (9, "break"), (10, "pending")):
        day = MON + timedelta(days=n)
        before = rules.advance(Fold(), calendar, minutes, date.min, day)
        assert rules.day_state(before, calendar, minutes, day, day) == state
        assert rules.view(before, calendar, minutes, day).status == state


def test_a_missed_day_with_no_freeze_is_missed_and_ends_the_run() -> None:
    calendar = cal()
    minutes = on(0, 1, 3)
    today = MON + timedelta(days=4)
    settled = rules.advance(Fold(), calendar, minutes, date.min, today)
    assert rules.day_state(settled, calendar, minutes, MON + timedelta(days=2), today) == "missed"
    assert [(r.start, r.length) for r in settled.recent] == [(MON, 2)]
    assert settled.run is not None and settled.run.length == 1


def test_settings_history_keeps_one_change_per_date_the_latest() -> None:
    a = DaySettings(effective=MON, at=T0, daily_goal_minutes=5)
    b = DaySettings(effective=MON, at=T0 + timedelta(hours=1), daily_goal_minutes=9)
    history = rules.with_settings([], a)
    assert history is not None
    history = rules.with_settings(history, b)
    assert history is not None and [s.daily_goal_minutes for s in history] == [9]
    assert rules.with_settings(history, a) is None  # older: a late delivery changes nothing
    assert rules.with_settings(history, b) is None  # the same again: a duplicate, too
    later = DaySettings(effective=MON + timedelta(days=7), at=T0, daily_goal_minutes=3)
    two_dates = rules.with_settings(history, later)
    assert two_dates is not None
    assert rules.with_settings(two_dates, a) is None  # late, among other dates' changes


def test_with_no_settings_known_a_minute_makes_a_day_active() -> None:
    calendar = Calendar(settings=[], breaks=[], skipped=[])
    assert calendar.kind(MON, 1) is rules.Kind.ACTIVE
    assert calendar.kind(MON, 0) is rules.Kind.MISSED


def test_the_fold_keeps_the_50_most_recent_and_the_50_longest_ended_runs() -> None:
    """docs/api.md: 50 of each, so /analytics/streaks pages are exact. 53 runs of 1 to 6
    days (no freeze earned), each ended by a missed day."""
    lengths = [1 + k % 6 for k in range(53)]
    offsets: list[int] = []
    for length in lengths:
        first = offsets[-1] + 2 if offsets else 0
        offsets.extend(range(first, first + length))
    end = MON + timedelta(days=offsets[-1] + 2)  # the last run's missed day is folded too
    fold = rules.advance(Fold(), cal(), on(*offsets), date.min, end)
    assert fold.run is None
    assert [r.length for r in fold.recent] == lengths[-50:]
    assert [r.length for r in fold.best] == sorted(lengths, reverse=True)[:50]


def test_expires_at_looks_800_days_ahead() -> None:
    """A break of 799 days after a done today: the day after it ends the streak. One of
    800 days: no day within the lookahead does."""
    after_today = MON + timedelta(days=1)

    def break_of(days: int) -> Calendar:
        return cal(breaks=((after_today, after_today + timedelta(days=days - 1)),))

    ends = streak(break_of(799), on(0), 0).expires_at
    assert ends == datetime.combine(MON + timedelta(days=801), time(), UTC)
    assert streak(break_of(800), on(0), 0).expires_at is None


def moved(history: list[DaySettings], at: str, timezone: str) -> list[DaySettings]:
    """``history`` with a move to ``timezone`` at ``at``, from the day it was made in (as
    auth states it: the today of the settings before, and that day's first instant)."""
    instant = datetime.fromisoformat(at)
    day = today_in(history[-1], instant)
    change = DaySettings(
        effective=day.date,
        at=instant,
        timezone=timezone,
        effective_from=day.starts_at,
    )
    return [*history, change]


def week_before(day: str) -> dict[date, int]:
    last = date.fromisoformat(day)
    return {last - timedelta(days=n): 30 for n in range(1, 8)}


def read_at(history: list[DaySettings], minutes: dict[date, int], now: str) -> rules.StreakView:
    calendar = Calendar.of(history, {}, rules.ALL_GOALS)
    return streak_now(history, calendar, minutes, datetime.fromisoformat(now), date.min)[2]


HOME = [DaySettings(effective=date.min, at=T0, timezone="Pacific/Pago_Pago")]


def test_pago_pago_to_kiritimati_late_in_the_day_skips_a_date_that_is_neutral() -> None:
    # 23:30 on 03-10 in Pago Pago is 00:30 on 03-12 in Kiritimati: 03-11 never was today.
    history = moved(HOME, "2026-03-10T23:30:00-11:00", "Pacific/Kiritimati")
    calendar = Calendar.of(history, {}, rules.ALL_GOALS)
    minutes = {**week_before("2026-03-10"), date(2026, 3, 10): 30}
    assert calendar.kind(date(2026, 3, 11), 0) is rules.Kind.SKIPPED
    assert calendar.kind(date(2026, 3, 11), 30) is rules.Kind.ACTIVE  # logged: it counts
    view = read_at(history, minutes, "2026-03-13T20:00:00+14:00")  # beyond the grace
    assert (view.today, view.current, view.freezes) == (date(2026, 3, 13), 8, 0)
    fold = rules.advance(Fold(), calendar, minutes, date.min, date(2026, 3, 13))
    assert fold.frozen == [date(2026, 3, 12)]  # the 12th was missed; the 11th was not
    assert rules.day_state(fold, calendar, minutes, date(2026, 3, 11), view.today) == "skipped"
    # Earlier in the day, 03-11 still is today in Pago Pago: neither zone needs it.
    assert calendar.kind(date(2026, 3, 11), 0) is rules.Kind.SKIPPED
    assert (
        Calendar.of(
            moved(HOME, "2026-03-10T12:00:00-11:00", "Pacific/Kiritimati"), {}, rules.ALL_GOALS
        ).skipped
        == []
    )


def test_kiritimati_to_pago_pago_repeats_the_date_until_pago_pago_ends_it() -> None:
    start = [DaySettings(effective=date.min, at=T0, timezone="Pacific/Kiritimati")]
    history = moved(start, "2026-03-10T09:00:00+14:00", "Pacific/Pago_Pago")
    minutes = {**week_before("2026-03-10")}
    # 09:00 in Kiritimati is 08:00 the day before in Pago Pago: today stays 03-10.
    view = read_at(history, minutes, "2026-03-10T20:00:00-11:00")  # 47 hours later
    assert (view.today, view.status, view.current, view.at_risk) == (
        date(2026, 3, 10),
        "pending",
        7,
        False,  # the week earned a freeze
    )
    # It ends at midnight in Pago Pago (11:00Z on the 11th), then the freeze covers it.
    assert view.expires_at == datetime(2026, 3, 12, 11, tzinfo=UTC)


def test_berlin_to_new_york_in_the_grace_keeps_the_day_still_today_in_berlin() -> None:
    # Flying east instead: New York at 20:00 on 03-20 (01:00 on the 21st in Berlin), the
    # streak at 6 days, nothing logged on the 20th, no freeze.
    start = [DaySettings(effective=date.min, at=T0, timezone="America/New_York")]
    history = moved(start, "2026-03-20T20:00:00-04:00", "Europe/Berlin")
    minutes = {date(2026, 3, 20) - timedelta(days=n): 30 for n in range(1, 7)}
    view = read_at(history, minutes, "2026-03-21T02:00:00+01:00")
    assert (view.today, view.status, view.current, view.at_risk) == (
        date(2026, 3, 20),
        "pending",
        6,
        True,
    )
    assert view.expires_at == datetime(2026, 3, 21, 4, tzinfo=UTC)  # midnight in New York
    logged = read_at(history, {**minutes, date(2026, 3, 20): 30}, "2026-03-21T02:00:00+01:00")
    assert (logged.today, logged.current) == (date(2026, 3, 21), 7)  # Berlin's today again
    after = read_at(history, minutes, "2026-03-21T06:00:00+01:00")  # the 20th over there
    assert (after.today, after.current) == (date(2026, 3, 21), 0)


def test_a_move_on_the_dst_day_ends_the_old_today_by_its_own_clock() -> None:
    # Berlin to Kathmandu on 2026-03-29 (CET to CEST at 02:00) at 22:30 CEST: 02:15 on the
    # 30th in Kathmandu; the 29th not logged, the 6-day streak kept until Berlin's midnight.
    start = [DaySettings(effective=date.min, at=T0, timezone="Europe/Berlin")]
    history = moved(start, "2026-03-29T22:30:00+02:00", "Asia/Kathmandu")
    minutes = {date(2026, 3, 29) - timedelta(days=n): 30 for n in range(1, 7)}
    view = read_at(history, minutes, "2026-03-29T23:00:00+02:00")
    assert (view.today, view.current, view.at_risk) == (date(2026, 3, 29), 6, True)
    assert view.expires_at == datetime(2026, 3, 29, 22, tzinfo=UTC)  # midnight CEST


def test_the_change_is_reckoned_from_changed_at_when_the_event_states_it() -> None:
    # A user.updated whose changed_at (auth's clock) is apart from its occurred_at (a
    # test clock, a late delivery): the skipped date and the grace come from changed_at.
    history = moved(HOME, "2026-03-10T23:30:00-11:00", "Pacific/Kiritimati")
    instant = history[-1].at
    stated = history[-1].model_copy(update={"at": T0 + timedelta(days=400), "changed_at": instant})
    now = instant + timedelta(hours=1)
    assert rules.skipped_dates(stated) == (date(2026, 3, 11), date(2026, 3, 11))
    got = rules.grace([*HOME, stated], now)
    assert got is not None and got.ends_at == instant + rules.GRACE
    # Without it (an older event), occurred_at stands for the change's instant.
    unstated = stated.model_copy(update={"changed_at": None})
    assert rules.skipped_dates(unstated) is None
    assert rules.grace([*HOME, unstated], now) is None


def test_the_settings_history_and_frozen_dates_keep_three_years() -> None:
    history = [
        DaySettings(effective=date(2020, 1, 1) + timedelta(days=400 * n), at=T0) for n in range(6)
    ]
    kept = rules.kept_settings(history, rules.horizon(date(2026, 1, 1)))
    # 2022-03-11's are in effect on the horizon (2022-12-30) and stay; older ones go.
    assert [s.effective for s in kept] == [
        date(2022, 3, 11),
        date(2023, 4, 15),
        date(2024, 5, 19),
        date(2025, 6, 23),
    ]
    assert rules.kept_settings(kept, rules.horizon(date(2026, 1, 1))) == kept
    fold = Fold(frozen=[date(2022, 12, 29), date(2022, 12, 30), date(2025, 1, 1)])
    assert rules.kept_frozen(fold, rules.horizon(date(2026, 1, 1))).frozen == [
        date(2022, 12, 30),
        date(2025, 1, 1),
    ]


# -- the property ------------------------------------------------------------------------

DAYS = 45
ZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Asia/Kathmandu",
)
BASE = date(2026, 3, 1)  # the span crosses the US (03-08) and EU (03-29) DST changes
BASE_AT = datetime(2026, 3, 1, tzinfo=UTC)
TRIPS = (
    ("Pacific/Pago_Pago", "Pacific/Kiritimati"),
    ("Pacific/Kiritimati", "Pacific/Pago_Pago"),
    ("America/New_York", "Europe/Berlin"),
    ("Europe/Berlin", "America/New_York"),
    ("UTC", "Asia/Kathmandu"),
)

TRIP = st.tuples(
    st.integers(1, DAYS - 2),  # the day it arrives
    st.one_of(st.integers(0, 23), st.just(10)),  # the hour (UTC) it arrives
    st.sampled_from(TRIPS),
    st.integers(1, 30),  # hours from the first move to the second
    st.sampled_from(("00:00", "02:30", "04:00")),
    # An hour logged every day of the week before the day the traveller left at home,
    # and nothing on that day.
    st.booleans(),
)
"""A trip: to the first zone, then to the second some hours later (a date line crossing
either way, a transatlantic flight either way, a DST day in March)."""

scenario = st.fixed_dictionaries(
    {
        "logs": st.dictionaries(st.integers(0, DAYS + 1), st.integers(0, 90), max_size=40),
        "breaks": st.lists(
            st.tuples(st.integers(0, DAYS), st.integers(0, 6), st.booleans()), max_size=4
        ),
        # The first: the registration (at T0, for every day); the others: changes (timezone
        # moves among them), each at its hour of the span, in that order.
        "settings": st.lists(
            st.tuples(
                st.builds(
                    lambda day, hour: 24 * day + hour,
                    st.integers(0, DAYS - 1),
                    # 10:00Z is 23:00 in Pago Pago: moving to Kiritimati then skips a date.
                    st.one_of(st.integers(0, 23), st.just(10)),
                ),
                st.sets(st.sampled_from(rules.WEEKDAYS), max_size=3),
                st.sampled_from((1, 1, 15, 45)),
                st.one_of(st.sampled_from(ZONES), st.sampled_from(ZONES[3:5])),
                st.sampled_from(("00:00", "02:30", "04:00")),
            ),
            min_size=1,
            max_size=4,
        ),
        "trip": st.one_of(st.none(), TRIP, TRIP),  # two in three examples
        # Hours from the last change to "now": within the 36-hour grace often.
        "after": st.one_of(st.integers(0, 12), st.integers(0, 40), st.integers(0, DAYS * 24)),
        "split": st.integers(0, DAYS),
    }
)


def history_of(s: dict) -> list[DaySettings]:
    """The settings as auth states them: each change from the user's today when it is made,
    by the settings before it (their floor included), and that day's first instant."""
    _, rest, goal, tz, start = s["settings"][0]
    said = [
        DaySettings(
            effective=date.min,
            at=T0,
            rest_weekdays=sorted(rest),
            daily_goal_minutes=goal,
            timezone=tz,
            day_start=start,
        )
    ]
    changes = list(s["settings"][1:])
    if s["trip"] is not None:
        day, hour, (there, back), hours, start, _ = s["trip"]
        arrival = 24 * day + hour
        # The trip is the last change, so that "now" follows its arrival.
        changes = [c for c in changes if c[0] < arrival - hours]
        changes += [(arrival - hours, set(), 1, there, start), (arrival, set(), 1, back, start)]
    changes.sort(key=lambda c: c[0])
    for i, (hour, rest, goal, tz, start) in enumerate(changes):
        at = BASE_AT + timedelta(hours=hour, minutes=i)  # one instant each
        prev = said[-1]
        floor = None
        if prev.effective_from is not None:
            floor = DayFloor(prev.effective, prev.effective_from)
        day = localday.today(at, zone(prev.timezone), parse_day_start(prev.day_start), floor)
        said.append(
            DaySettings(
                effective=day.date,
                at=at,
                rest_weekdays=sorted(rest),
                daily_goal_minutes=goal,
                timezone=tz,
                day_start=start,
                effective_from=day.starts_at,
            )
        )
    return said


def logs_of(s: dict) -> dict[date, int]:
    """Each date's minutes; with a trip that says so, a week logged before the day it
    left at home, and nothing on that day."""
    logs = {BASE + timedelta(days=off): m for off, m in s["logs"].items()}
    if s["trip"] is not None and s["trip"][-1]:
        home = history_of(s)[-1].effective
        logs.update({home - timedelta(days=n): 60 for n in range(1, 8)})
        logs.pop(home, None)
    return logs


def now_of(s: dict) -> datetime:
    last = history_of(s)[-1].at
    return min(max(last, BASE_AT) + timedelta(hours=s["after"]), BASE_AT + timedelta(days=DAYS))


def today_in(settings: DaySettings, now: datetime) -> localday.LocalDay:
    floor = None
    if settings.effective_from is not None:
        floor = DayFloor(settings.effective, settings.effective_from)
    return localday.today(now, zone(settings.timezone), parse_day_start(settings.day_start), floor)


def build(s: dict) -> tuple[list[DaySettings], Calendar, dict[date, int]]:
    history = rules.with_settings([], history_of(s)[0]) or []
    for change in history_of(s)[1:]:
        history = rules.with_settings(history, change) or history
    breaks = {
        f"b{i}": BreakFact(
            goal_id=None,
            start=BASE + timedelta(days=off),
            end=BASE + timedelta(days=off + n),
            version=1,
            deleted=gone,
        )
        for i, (off, n, gone) in enumerate(s["breaks"])
    }
    minutes = logs_of(s)
    return history, Calendar.of(history, breaks, rules.ALL_GOALS), minutes


def reference(s: dict) -> dict[str, object]:
    """Issue 15's rules, read literally, over every day from the span's start: no fold
    state kept between calls, no skipping. Today is the latest settings' (with its floor);
    for 36 hours after the last change, the one of the settings before that change's date
    when the new one would spend a freeze or end the run on a day still today there."""
    said = history_of(s)
    now = now_of(s)

    def setting(day: date) -> DaySettings:
        # The first applies from date.min; of two for one date, the later said wins.
        return [x for x in said if x.effective <= day][-1]

    # Never the user's today: the dates between a change's date and its first today.
    spans = [(c.effective, today_in(c, c.at).date) for c in said[1:]]

    def skipped(day: date) -> bool:
        return any(after < day < first for after, first in spans)

    def on_break(day: date) -> bool:
        return any(
            not gone and BASE + timedelta(days=off) <= day <= BASE + timedelta(days=off + n)
            for off, n, gone in s["breaks"]
        )

    logs = logs_of(s)

    def label(day: date) -> str:
        if logs.get(day, 0) >= setting(day).daily_goal_minutes:
            return "active"
        if skipped(day):
            return "skipped"
        if on_break(day):
            return "break"
        if rules.WEEKDAYS[day.weekday()] in setting(day).rest_weekdays:
            return "rest"
        return "missed"

    first = min([BASE - timedelta(days=1), *logs])
    # The span, and the lookahead of expires_at past it (rules.LOOKAHEAD_DAYS at most).
    labels = {first + timedelta(days=n): label(first + timedelta(days=n)) for n in range(850)}
    new = streak_from_scratch(labels, today_in(said[-1], now).date, setting)
    last = said[-1]
    if len(said) > 1 and last.at <= now < last.at + timedelta(hours=36):
        old_day = today_in(setting(last.effective - timedelta(days=1)), now)
        grace_end = last.at + timedelta(hours=36)
        old = streak_from_scratch(labels, old_day.date, setting, min(old_day.ends_at, grace_end))
        if any(old_day.date <= d < new["today"] for d in new["frozen"] | new["broken"]):
            expires = min(old["expires"] or grace_end, grace_end)
            if new["run_start"] is not None and new["run_start"] == old["run_start"]:
                expires = None if new["expires"] is None else max(expires, new["expires"])
            return old | {"expires": expires, "labels": labels}
    return new | {"labels": labels}


def streak_from_scratch(
    labels: dict[date, str],
    today: date,
    setting: Callable[[date], DaySettings],
    today_ends: datetime | None = None,
) -> dict[str, Any]:
    runs: list[tuple[date, date, int]] = []
    length, freezes, start, end, frozen, broken = 0, 0, None, None, set(), set()

    def play(day: date) -> bool:
        """Apply one day; whether the run ended on it."""
        nonlocal length, freezes, start, end
        if labels[day] == "active":
            start = start if length else day
            length, end = length + 1, day
            if length % 7 == 0:
                freezes = min(2, freezes + 1)
        elif labels[day] == "missed" and length:
            if freezes:
                freezes -= 1
                frozen.add(day)
            else:
                runs.append((start, end, length))
                broken.add(day)
                length, freezes = 0, 0
                return True
        return False

    day = min(labels)
    while day < today:
        play(day)
        day += timedelta(days=1)
    held, ended, run_start = freezes, list(runs), start if length else None
    if labels[today] == "active":
        play(today)
    current = length
    expires = None
    if current:
        d = today if labels[today] == "missed" else today + timedelta(days=1)
        while not play(d):
            d += timedelta(days=1)
        ends = setting(d)
        expires = day_bounds(d, zone(ends.timezone), parse_day_start(ends.day_start)).ends_at
        if d == today and today_ends is not None:
            expires = today_ends
    first_active = min(
        (d for d, lab in labels.items() if lab == "active" and d <= today), default=None
    )
    return {
        "today": today,
        "current": current,
        "held_before_today": held,
        "expires": expires,
        "first_active": first_active,
        "frozen": {d for d in frozen if d < today},
        "broken": {d for d in broken if d < today},
        "run_start": run_start,
        "runs_before_today": ended,
    }


def streak_now(
    history: list[DaySettings],
    calendar: Calendar,
    minutes: dict[date, int],
    now: datetime,
    split: date,
) -> tuple[Fold, date, rules.StreakView]:
    """What the reads answer (reads/service.py's _streak_now), each fold in two pieces as
    the projection keeps a checkpoint and a read folds the recent days on top."""

    def settled(day: date) -> Fold:
        first = rules.advance(Fold(), calendar, minutes, date.min, min(split, day))
        return rules.advance(first, calendar, minutes, min(split, day), day)

    today = rules.user_today(history, now).date
    new = settled(today)
    grace = rules.grace(history, now)
    if grace is not None and grace.today.date < today:
        old = settled(grace.today.date)
        kept = rules.grace_view(old, new, calendar, minutes, grace, today)
        if kept is not None:
            return old, grace.today.date, kept
    return new, today, rules.view(new, calendar, minutes, today)


@settings(settings.get_profile("pure"))
@given(scenario)
def test_the_fold_in_two_pieces_agrees_with_a_reference_from_scratch(s: dict) -> None:
    history, calendar, minutes = build(s)
    split = BASE + timedelta(days=s["split"])
    fold, today, view = streak_now(history, calendar, minutes, now_of(s), split)
    assert fold == rules.advance(Fold(), calendar, minutes, date.min, today)
    ref = reference(s)
    event(f"today by the old settings: {today != rules.user_today(history, now_of(s)).date}")
    event(f"a skipped date: {'skipped' in ref['labels'].values()}")
    assert today == ref["today"]
    assert view.current == ref["current"]
    assert view.expires_at == ref["expires"]
    assert view.at_risk == (
        view.current > 0 and view.status == "pending" and ref["held_before_today"] == 0
    )
    assert set(fold.frozen) == ref["frozen"]
    runs = ref["runs_before_today"]
    assert [(r.start, r.end, r.length) for r in fold.recent] == runs
    assert view.longest == max([view.current, *(n for _, _, n in runs)])
    for n in range(-1, DAYS + 2):
        day = BASE + timedelta(days=n)
        state = rules.day_state(fold, calendar, minutes, day, today)
        assert state == expected_state(ref, day)


def expected_state(ref: dict, day: date) -> str:
    """The heatmap state, as docs/api.md words it (on the streak's today)."""
    label = ref["labels"][day]
    today = ref["today"]
    if day > today:
        return "future"
    if label == "active":
        return "active"
    if day == today:
        return "pending" if label == "missed" else str(label)
    if ref["first_active"] is None or day < ref["first_active"]:
        return "none"
    if label != "missed":
        return str(label)
    return "frozen" if day in ref["frozen"] else "missed"
