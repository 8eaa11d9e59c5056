"""``streak_rules.every_run`` (an export's derived runs) against the reads' own path
(``advance`` then ``view``, what GET /analytics/streaks answers), and the restored past
settings of a ``user.*`` event (an import's history) in the settings history."""

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from momentum_libs import streak_rules as rules
from momentum_libs.events import PastDaySettings, UserPayload

START = date(2026, 1, 5)
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _calendar(rest: list[str], goal: int, breaks: list[tuple[int, int]]) -> rules.Calendar:
    settings_ = [
        rules.DaySettings(effective=START, at=T0, rest_weekdays=rest, daily_goal_minutes=goal)
    ]
    facts = {
        str(i): rules.BreakFact(
            goal_id=None,
            start=START + timedelta(days=a),
            end=START + timedelta(days=a + n),
            version=1,
        )
        for i, (a, n) in enumerate(breaks)
    }
    return rules.Calendar.of(settings_, facts, rules.ALL_GOALS)


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.lists(st.sampled_from([0, 0, 5, 20, 40]), min_size=1, max_size=90),
    rest=st.lists(st.sampled_from(rules.WEEKDAYS), max_size=3, unique=True),
    goal=st.sampled_from([1, 15, 30]),
    breaks=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 5)), max_size=2),
    today_at=st.integers(0, 95),
)
def test_every_run_is_what_the_reads_fold_answers(
    minutes: list[int], rest: list[str], goal: int, breaks: list[tuple[int, int]], today_at: int
) -> None:
    calendar = _calendar(rest, goal, breaks)
    days = {START + timedelta(days=i): m for i, m in enumerate(minutes) if m}
    today = START + timedelta(days=today_at)
    settled = rules.advance(rules.Fold(), calendar, days, date.min, today)
    viewed = rules.view(settled, calendar, days, today)
    runs = rules.every_run(calendar, days, today)
    assert runs == viewed.runs  # fewer runs than RUNS_KEPT: the view lists them all
    assert all(r.start <= r.end <= today for r in runs)


def test_every_run_keeps_more_runs_than_a_fold_does() -> None:
    calendar = _calendar([], 1, [])
    days = {START + timedelta(days=3 * i): 10 for i in range(rules.RUNS_KEPT + 5)}
    today = START + timedelta(days=3 * (rules.RUNS_KEPT + 5))
    runs = rules.every_run(calendar, days, today)
    assert len(runs) == rules.RUNS_KEPT + 5
    assert [r.start for r in runs] == sorted(days)


def test_restored_settings_come_before_the_accounts_own_and_never_become_current() -> None:
    registered = UserPayload(timezone="Europe/Berlin", effective_date=date(2026, 6, 1))
    history = rules.with_all([], rules.event_settings(registered, T0, registered=True))
    assert history is not None
    past = PastDaySettings(
        effective_date=date(2026, 2, 2),
        timezone="UTC",
        rest_weekdays=["sun"],
        daily_goal_minutes=20,
    )
    updated = UserPayload(timezone="Asia/Tokyo", effective_date=date(2026, 6, 1), restored=[past])
    later = T0 + timedelta(days=1)
    merged = rules.with_all(history, rules.event_settings(updated, later, registered=False))
    assert merged is not None
    assert [s.effective for s in merged] == [date(2026, 2, 2), date(2026, 6, 1)]
    current = rules.current_settings(merged)
    assert current is not None and current.timezone == "Asia/Tokyo"
    calendar = rules.Calendar.of(merged, {}, rules.ALL_GOALS)
    assert calendar.kind(date(2026, 2, 8), 0) is rules.Kind.REST  # a Sunday then
    assert calendar.kind(date(2026, 2, 9), 19) is rules.Kind.MISSED  # under that day's goal
    assert calendar.kind(date(2026, 6, 7), 0) is rules.Kind.MISSED  # a Sunday of its own
    # The same event again changes nothing.
    assert rules.with_all(merged, rules.event_settings(updated, later, registered=False)) is None
