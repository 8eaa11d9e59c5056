"""The pure streak engine (projections/rules.py): each rule of issue 15 on its own, and a
property: random logs, breaks, setting changes and timezone moves folded in two pieces
(as the projection keeps a checkpoint and a read folds the recent days on top) agree with
an independent reference below that recomputes every day from scratch.
"""

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from momentum_analytics.projections import rules
from momentum_analytics.projections.rules import BreakFact, Calendar, DaySettings, Fold
from momentum_libs.localday import day_bounds, parse_day_start, zone

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
    pending = rules.advance(Fold(), calendar, minutes, date.min, MON + timedelta(days=12))
    assert (
        rules.day_state(
            pending, calendar, minutes, MON + timedelta(days=12), MON + timedelta(days=12)
        )
        == "pending"
    )


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
    calendar = Calendar(settings=[], breaks=[])
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

scenario = st.fixed_dictionaries(
    {
        "logs": st.dictionaries(st.integers(0, DAYS + 1), st.integers(0, 90), max_size=40),
        "breaks": st.lists(
            st.tuples(st.integers(0, DAYS), st.integers(0, 6), st.booleans()), max_size=4
        ),
        "settings": st.lists(
            st.tuples(
                st.integers(0, DAYS),
                st.sets(st.sampled_from(rules.WEEKDAYS), max_size=3),
                st.sampled_from((1, 1, 15, 45)),
                st.sampled_from(ZONES),
                st.sampled_from(("00:00", "02:30", "04:00")),
            ),
            min_size=1,
            max_size=4,
        ),
        "today": st.integers(0, DAYS),
        "split": st.integers(0, DAYS),
    }
)


def build(s: dict) -> tuple[Calendar, dict[date, int], date, date]:
    history = [
        DaySettings(
            effective=date.min if i == 0 else BASE + timedelta(days=off),
            at=T0 + timedelta(days=i),
            rest_weekdays=sorted(rest),
            daily_goal_minutes=goal,
            timezone=tz,
            day_start=start,
        )
        for i, (off, rest, goal, tz, start) in enumerate(s["settings"])
    ]
    history = sorted({h.effective: h for h in history}.values(), key=lambda h: h.effective)
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
    minutes = {BASE + timedelta(days=off): m for off, m in s["logs"].items()}
    today = BASE + timedelta(days=s["today"])
    split = BASE + timedelta(days=min(s["split"], s["today"]))
    return Calendar.of(history, breaks, rules.ALL_GOALS), minutes, today, split


def reference(s: dict, today: date) -> dict[str, object]:
    """Issue 15's rules, read literally, over every day from the span's start: no fold
    state kept between calls, no skipping."""
    settings_at = sorted(
        ((date.min if i == 0 else BASE + timedelta(days=off)), i, rest, goal, tz, start)
        for i, (off, rest, goal, tz, start) in enumerate(s["settings"])
    )

    def setting(day: date) -> tuple:
        # The first applies from date.min; of two for one date, the later said wins.
        return [x for x in settings_at if x[0] <= day][-1]

    def on_break(day: date) -> bool:
        return any(
            not gone and BASE + timedelta(days=off) <= day <= BASE + timedelta(days=off + n)
            for off, n, gone in s["breaks"]
        )

    logs = {BASE + timedelta(days=off): m for off, m in s["logs"].items()}

    def label(day: date) -> str:
        _, _, rest, goal, _, _ = setting(day)
        if logs.get(day, 0) >= goal:
            return "active"
        if on_break(day):
            return "break"
        if rules.WEEKDAYS[day.weekday()] in rest:
            return "rest"
        return "missed"

    labels = {
        BASE - timedelta(days=1) + timedelta(days=n): label(
            BASE - timedelta(days=1) + timedelta(days=n)
        )
        for n in range(DAYS + 3 + 800)
    }
    runs: list[tuple[date, date, int]] = []
    length, freezes, start, end, frozen = 0, 0, None, None, set()

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
                length, freezes = 0, 0
                return True
        return False

    day = min(labels)
    while day < today:
        play(day)
        day += timedelta(days=1)
    held, ended = freezes, list(runs)
    if labels[today] == "active":
        play(today)
    current = length
    expires = None
    if current:
        d = today if labels[today] == "missed" else today + timedelta(days=1)
        while not play(d):
            d += timedelta(days=1)
        _, _, _, _, tz, ds = setting(d)
        expires = day_bounds(d, zone(tz), parse_day_start(ds)).ends_at
    first_active = min(
        (d for d, lab in labels.items() if lab == "active" and d <= today), default=None
    )
    return {
        "current": current,
        "held_before_today": held,
        "expires": expires,
        "first_active": first_active,
        "frozen": {d for d in frozen if d < today},
        "runs_before_today": ended,
        "labels": labels,
    }


@settings(settings.get_profile("pure"))
@given(scenario)
def test_the_fold_in_two_pieces_agrees_with_a_reference_from_scratch(s: dict) -> None:
    calendar, minutes, today, split = build(s)
    whole = rules.advance(Fold(), calendar, minutes, date.min, today)
    first = rules.advance(Fold(), calendar, minutes, date.min, split)
    assert rules.advance(first, calendar, minutes, split, today) == whole
    ref = reference(s, today)
    view = rules.view(whole, calendar, minutes, today)
    assert view.current == ref["current"]
    assert view.expires_at == ref["expires"]
    assert view.at_risk == (
        view.current > 0 and view.status == "pending" and ref["held_before_today"] == 0
    )
    assert set(whole.frozen) == ref["frozen"]
    runs = ref["runs_before_today"]
    assert [(r.start, r.end, r.length) for r in whole.recent] == runs
    assert view.longest == max([view.current, *(n for _, _, n in runs)])
    for n in range(-1, DAYS + 2):
        day = BASE + timedelta(days=n)
        state = rules.day_state(whole, calendar, minutes, day, today)
        assert state == expected_state(ref, day, today)


def expected_state(ref: dict, day: date, today: date) -> str:
    """The heatmap state, as docs/api.md words it."""
    label = ref["labels"][day]
    if day > today:
        return "future"
    if label == "active":
        return "active"
    if day == today:
        return "pending"
    if ref["first_active"] is None or day < ref["first_active"]:
        return "none"
    if label != "missed":
        return str(label)
    return "frozen" if day in ref["frozen"] else "missed"
