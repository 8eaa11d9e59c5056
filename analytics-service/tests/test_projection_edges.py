"""Edge cases of applying events and reading them back, each pinned by a defect (or a
surviving mutant) the suite once let through. The handler runs over the real store,
without the stream, so each case can deliver events in exactly the order it needs."""

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from momentum_analytics.projections import service as projection_service
from momentum_analytics.projections.models import (
    DayTotal,
    GoalState,
    LogEntry,
    MonthDays,
    TargetFact,
    UserProjection,
    empty_month,
)
from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.projections.service import (
    ConflictError,
    ProjectionService,
    pick_active_goal,
    recount_days,
    retry_on_conflict,
)
from momentum_analytics.reads.service import ReadService
from momentum_libs import streak_rules as rules
from momentum_libs.events import BreakPayload, Envelope, EventType, PastDaySettings, UserPayload
from momentum_libs.retry import WRITE_ATTEMPTS
from momentum_libs.testing.clocks import FixedClock

from .analytics_support import CrashError, CrashingRepository, FakeTracking, projection_matches

DAY = timedelta(days=1)


async def apply(projections: ProjectionService, events: Iterable[Envelope]) -> None:
    for envelope in events:
        await projections.handle(envelope)


async def moved_twice(
    service: ProjectionService, t: FakeTracking, first: date, second: date, third: date
) -> tuple[Envelope, Envelope]:
    """A log of 40 minutes applied on ``first``; the updates moving it to ``second``, then
    to ``third``, not applied."""
    goal = t.create_goal()
    log_id = t.create_log(goal, first, 40)
    await apply(service, t.take())
    t.update_log(log_id, day=second)
    t.update_log(log_id, day=third)
    v2, v3 = t.take()
    return v2, v3


def today_utc() -> date:
    return datetime.now(UTC).date()


async def stored_days(repo: ProjectionRepository, user_id: str) -> dict[str, int]:
    months = await repo.months_of_user(user_id)
    return {d: day.t for m in months.values() for d, day in m.days.items()}


class RacedRepository(ProjectionRepository):
    """The real repository, running ``after_read`` once right after the months are read."""

    after_read: Callable[[], Awaitable[None]] | None = None

    async def get_months(self, user_id: str, months: Iterable[str]) -> dict[str, MonthDays]:
        read = await super().get_months(user_id, months)
        hook, self.after_read = self.after_read, None
        if hook is not None:
            await hook()
        return read


async def test_the_longest_run_survives_runs_cut_back_twice(
    projections: ProjectionService,
) -> None:
    """A 10-day run, then more single days than the runs kept, fed in date order: the
    10-day run leaves the most recent runs kept and must still be the longest."""
    t = FakeTracking()
    goal = t.create_goal()
    first = date(2026, 3, 1)
    for n in range(10):
        t.create_log(goal, first + n * DAY, 30)
    await apply(projections, t.take())
    # Day 10 is frozen (the freeze of day 7), day 11 ends the run.
    for k in range(rules.RUNS_KEPT + 1):
        t.create_log(goal, first + (12 + 2 * k) * DAY, 30)
        await apply(projections, t.take())
    reads = ReadService(projections.repo)
    assert (await reads.streak(t.user_id)).longest_streak == 10
    recent = await reads.streaks(t.user_id, None, "recent", rules.RUNS_KEPT)
    assert len(recent.items) == rules.RUNS_KEPT and recent.items[-1].length == 1
    longest = await reads.streaks(t.user_id, None, "longest", 1)
    assert [(r.start, r.length) for r in longest.items] == [(first, 10)]
    await projection_matches(projections.repo, t)


async def test_a_deleted_weekly_target_no_longer_counts(projections: ProjectionService) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    week = today_utc() - timedelta(days=today_utc().weekday())
    target = t.set_target(goal, week, 120)
    t.create_log(goal, week, 30)
    await apply(projections, t.take())
    reads = ReadService(projections.repo)
    assert (await reads.dashboard(t.user_id)).weekly_target_minutes == 120
    t.delete_target(target)
    await apply(projections, t.take())
    dashboard = await reads.dashboard(t.user_id)
    assert dashboard.weekly_target_minutes is None
    assert dashboard.weekly_progress_percent is None
    assert (await reads.weekly_summary(t.user_id, week, goal)).target_minutes is None


async def test_a_goal_deletion_drops_its_minutes_before_its_logs_go(
    projections: ProjectionService,
) -> None:
    """tracking tombstones the goal first and sweeps its logs after: goal.deleted alone
    must clear its days, and no later event of its logs may bring minutes back."""
    t = FakeTracking()
    goal = t.create_goal()
    other = t.create_goal("other", active=False)
    first = date(2026, 2, 26)  # its logs span two months
    for n in range(5):
        t.create_log(goal, first + n * DAY, 20)
    t.create_log(other, first, 7)
    await apply(projections, t.take())
    t.delete_goal(goal)
    goal_deleted, *log_deletions = t.take()
    await apply(projections, [goal_deleted])
    assert await stored_days(projections.repo, t.user_id) == {first.isoformat(): 7}
    user = await projections.repo.get_user(t.user_id)
    assert user is not None and user.total_minutes == 7
    heatmap = await ReadService(projections.repo).heatmap(t.user_id, first, first + 10 * DAY)
    assert [d.minutes for d in heatmap.days if d.minutes] == [7]
    # A log written while the goal was being deleted, published after goal.deleted.
    t.create_log(goal, first + 8 * DAY, 50)
    await apply(projections, t.take())
    await apply(projections, log_deletions)
    assert await stored_days(projections.repo, t.user_id) == {first.isoformat(): 7}
    await projection_matches(projections.repo, t)


async def test_an_update_overtaking_the_one_before_moves_the_log_at_once(
    projections: ProjectionService,
) -> None:
    """v1 on a March day, v2 moves it to April, v3 to May; v3 arrives before v2."""
    t = FakeTracking()
    v2, v3 = await moved_twice(projections, t, date(2026, 3, 5), date(2026, 4, 5), date(2026, 5, 5))
    await apply(projections, [v3])
    assert await stored_days(projections.repo, t.user_id) == {"2026-05-05": 40}
    await projection_matches(projections.repo, t)
    await apply(projections, [v2])  # late: v3 left April behind before v2 got there
    await projection_matches(projections.repo, t)
    await apply(projections, [v3])  # redelivered
    await projection_matches(projections.repo, t)


async def test_a_crash_before_the_commit_then_a_late_move_leaves_no_stale_streak_day(
    projections: ProjectionService,
) -> None:
    """v1 on March 5, v2 moves it to March 6, v3 to April 2; v3 overtakes v2 and takes the
    log off March 5 in passing, then dies before the user's commit. Its redelivery cannot
    see March 5 any more: the late v2, which moved the log off March 5, recounts it. On
    March 10, so that March 5 is in the user's recent days (older days are refolded from
    the months whatever was touched)."""
    repo = CrashingRepository(projections.repo.db)
    service = ProjectionService(repo, FixedClock("2026-03-10T12:00:00+00:00"))
    t = FakeTracking()
    goal = t.create_goal()
    t.create_log(goal, date(2026, 3, 4), 10)  # March 4 and 5 make a run of two
    log_id = t.create_log(goal, date(2026, 3, 5), 40)
    await apply(service, t.take())
    t.update_log(log_id, day=date(2026, 3, 6))
    t.update_log(log_id, day=date(2026, 4, 2))
    v2, v3 = t.take()
    repo.crash_next_commit = True
    with pytest.raises(CrashError):
        await service.handle(v3)
    await apply(service, [v3, v2])  # the redelivery, then the late move
    user = await repo.get_user(t.user_id)
    assert user is not None
    assert (await ReadService(repo).streak(t.user_id)).longest_streak == 1
    await projection_matches(repo, t)


async def test_an_overtaking_update_redelivered_after_a_crash_recounts_the_days_it_cleared(
    projections: ProjectionService,
) -> None:
    """v1 on March 5, v2 moves it to April 5, v3 to April 6; v3 overtakes v2, takes the
    log off March, and dies before the user's commit. Its redelivery finds itself in
    April already, and must still recount March 5 for the user (v2 is not in yet). On
    March 10, so that March 5 is in the user's recent days (older days are refolded from
    the months whatever was touched)."""
    repo = CrashingRepository(projections.repo.db)
    service = ProjectionService(repo, FixedClock("2026-03-10T12:00:00+00:00"))
    t = FakeTracking()
    goal = t.create_goal()
    t.create_log(goal, date(2026, 3, 4), 10)
    log_id = t.create_log(goal, date(2026, 3, 5), 40)
    await apply(service, t.take())
    t.update_log(log_id, day=date(2026, 4, 5))
    t.update_log(log_id, day=date(2026, 4, 6))
    _v2, v3 = t.take()
    repo.crash_next_commit = True
    with pytest.raises(CrashError):
        await service.handle(v3)
    await apply(service, [v3])
    await projection_matches(repo, t)


async def test_the_replica_losing_a_race_on_a_month_retries_and_keeps_its_log(
    projections: ProjectionService,
) -> None:
    """Between one replica's read and write of a month, another writes that month; the
    other's user commit comes after the first one's (here: it dies first, then retries).
    Only the month's own guard tells the first replica that it lost."""
    raced = RacedRepository(projections.repo.db)
    slow = CrashingRepository(projections.repo.db)
    loser, winner = ProjectionService(raced), ProjectionService(slow)
    t = FakeTracking()
    goal = t.create_goal()
    await apply(winner, t.take())
    t.create_log(goal, date(2026, 3, 5), 40)
    t.create_log(goal, date(2026, 3, 6), 25)
    late, early = t.take()

    async def the_other_replica_writes_the_month_first() -> None:
        slow.crash_next_commit = True
        with pytest.raises(CrashError):
            await winner.handle(early)

    raced.after_read = the_other_replica_writes_the_month_first
    await loser.handle(late)
    await winner.handle(early)  # the other replica's retry
    assert await stored_days(raced, t.user_id) == {"2026-03-05": 40, "2026-03-06": 25}
    await projection_matches(raced, t)


async def test_a_heatmap_from_before_the_recent_window_into_it_shows_both_parts(
    projections: ProjectionService,
) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    today = today_utc()
    t.create_log(goal, today - 40 * DAY, 30)
    t.create_log(goal, today - 2 * DAY, 60)
    await apply(projections, t.take())
    user = await projections.repo.get_user(t.user_id)
    assert user is not None and user.recent_from is not None
    assert user.recent_from > today - 40 * DAY  # the range starts before the window
    assert user.recent_from <= today - 7 * DAY  # the current week is read with the user
    reads = ReadService(projections.repo)
    heatmap = await reads.heatmap(t.user_id, today - 60 * DAY, today - DAY)
    shown = {d.date: d.minutes for d in heatmap.days if d.minutes}
    assert shown == {today - 40 * DAY: 30, today - 2 * DAY: 60}
    default: Any = await reads.heatmap(t.user_id, None, None)
    assert sum(d.minutes for d in default.days) == 90


async def test_a_heatmap_across_new_year_reads_both_years_months(
    projections: ProjectionService,
) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    t.create_log(goal, date(2025, 12, 30), 15)
    t.create_log(goal, date(2026, 1, 2), 45)
    await apply(projections, t.take())
    heatmap = await ReadService(projections.repo).heatmap(
        t.user_id, date(2025, 12, 20), date(2026, 1, 10)
    )
    shown = {d.date: d.minutes for d in heatmap.days if d.minutes}
    assert shown == {date(2025, 12, 30): 15, date(2026, 1, 2): 45}


async def test_a_user_stored_before_the_recent_window_existed_is_read_from_the_months(
    projections: ProjectionService,
) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    today = today_utc()
    t.create_log(goal, today, 25)
    await apply(projections, t.take())
    await projections.repo.users.update_one(
        {"_id": t.user_id}, {"$set": {"recent_from": None, "recent_days": {}}}
    )
    reads = ReadService(projections.repo)
    assert (await reads.dashboard(t.user_id)).weekly_logged_minutes == 25
    heatmap = await reads.heatmap(t.user_id, today - 3 * DAY, today)
    assert [d.minutes for d in heatmap.days] == [0, 0, 0, 25]


def test_recounting_days_says_whether_any_of_them_changed() -> None:
    """Whatever the order of the days: a day set, then a day that stays empty, is a
    change; a day whose total changes is one; a recount that changes nothing is none."""
    month = empty_month("u", "2026-03")
    month.logs = {
        "a": LogEntry(date="2026-03-05", goal_id="g", minutes=30, version=1),
        "b": LogEntry(date="2026-03-07", goal_id="g", minutes=10, version=1),
        "c": LogEntry(date="2026-03-07", goal_id="h", minutes=5, version=1),
    }
    assert recount_days(month, ["2026-03-05", "2026-03-06"], set()) is True
    assert month.days == {"2026-03-05": DayTotal(t=30, g={"g": 30})}
    assert recount_days(month, ["2026-03-05", "2026-03-06"], set()) is False
    assert recount_days(month, ["2026-03-07"], set()) is True
    assert recount_days(month, ["2026-03-07"], {"h"}) is True  # h deleted: 15 -> 10
    assert month.days["2026-03-07"] == DayTotal(t=10, g={"g": 10})


def test_goals_activated_at_the_same_instant_pick_one_by_id() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    goals = {gid: GoalState(title=gid, is_active=True, activated_at=at) for gid in ("a", "b")}
    chosen = pick_active_goal(goals)
    assert chosen is not None and chosen.id == "b"


class WipeCrashingRepository(ProjectionRepository):
    """The real repository, dying once after a user's tombstone, before the wipe."""

    crash_next_wipe = False

    async def wipe_user_data(self, user_id: str) -> None:
        if self.crash_next_wipe:
            self.crash_next_wipe = False
            raise CrashError
        await super().wipe_user_data(user_id)


@pytest.mark.parametrize("straggler", ["goal", "log"])
async def test_an_event_after_a_deletion_that_died_before_its_wipe_wipes(
    projections: ProjectionService, straggler: str
) -> None:
    """The tombstone is committed, the process dies before the wipe; a straggling goal or
    log event handled before the deletion's redelivery leaves nothing either."""
    repo = WipeCrashingRepository(projections.repo.db)
    service = ProjectionService(repo)
    t = FakeTracking()
    goal = t.create_goal()
    t.create_log(goal, date(2026, 3, 5), 40)
    await apply(service, t.take())
    t.delete_user()
    (deleted,) = t.take()
    repo.crash_next_wipe = True
    with pytest.raises(CrashError):
        await service.handle(deleted)
    assert await stored_days(repo, t.user_id) != {}  # the crash left the days behind
    if straggler == "goal":
        t.activate_goal(goal)
    else:
        t.create_log(goal, date(2026, 3, 6), 15)
    await apply(service, t.take())
    assert await stored_days(repo, t.user_id) == {}


async def test_events_after_a_user_deletion_are_handled_not_retried(
    projections: ProjectionService,
) -> None:
    """The deletion, its duplicate and straggling goal, settings, log and break events each
    succeed at once: a handler that failed here would have them retried and
    dead-lettered."""
    t = FakeTracking()
    goal = t.create_goal()
    t.create_log(goal, date(2026, 3, 5), 40)
    await apply(projections, t.take())
    t.delete_user()
    (deleted,) = t.take()
    t.activate_goal(goal)
    t.set_timezone("Europe/Berlin")  # what the account said just before its deletion
    sick = (date(2026, 3, 6), date(2026, 3, 7))
    t.create_log(goal, date(2026, 3, 6), 15)
    stragglers = [*t.take(), break_event(t.user_id, EventType.BREAK_CREATED, *sick, 1)]
    await apply(projections, [deleted, deleted])
    assert await stored_days(projections.repo, t.user_id) == {}
    await apply(projections, stragglers)
    user = await projections.repo.get_user(t.user_id)
    assert user is not None and user.deleted and user.goals == {}
    # Nothing of the erased account is kept again, its settings and breaks included.
    assert (user.day_settings, user.timezone_at, user.breaks) == ([], None, {})
    assert await stored_days(projections.repo, t.user_id) == {}


async def test_each_lost_race_pauses_by_the_retry_policy_and_the_last_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The house's one policy (momentum_libs.retry): a pause after each lost race, the
    attempt numbers growing, and a ConflictError once every attempt lost."""
    pauses: list[int] = []

    async def record(attempt: int) -> None:  # in place of the jittered sleep
        pauses.append(attempt)

    monkeypatch.setattr(projection_service, "backoff", record)
    outcomes = iter([False, False, True])

    async def third_time_lucky() -> bool:
        return next(outcomes)

    await retry_on_conflict(third_time_lucky, "unused")
    assert pauses == [0, 1]

    pauses.clear()

    async def always_lost() -> bool:
        return False

    with pytest.raises(ConflictError, match="kept losing"):
        await retry_on_conflict(always_lost, "kept losing")
    assert pauses == list(range(WRITE_ATTEMPTS))


def occurred(events: list[Envelope], instant: datetime | str) -> list[Envelope]:
    at = datetime.fromisoformat(instant) if isinstance(instant, str) else instant
    return [e.model_copy(update={"occurred_at": at}) for e in events]


async def test_a_move_east_keeps_the_streak_on_the_day_still_today_at_home(
    projections: ProjectionService,
) -> None:
    """The read's grace (rules.grace_view): New York to Berlin at 20:00 in New York with
    nothing logged that day. Berlin's today would judge the 20th as missed; the streak
    stays on New York's 20th, pending, until New York's midnight. With the 20th logged
    too there is nothing to keep: the new today stands."""
    t = FakeTracking()
    t.register("America/New_York")
    await apply(projections, occurred(t.take(), "2026-03-01T12:00:00+00:00"))
    goal = t.create_goal()
    for n in range(6):
        t.create_log(goal, date(2026, 3, 14) + n * DAY, 30)
    t.set_timezone("Europe/Berlin")
    await apply(projections, occurred(t.take(), "2026-03-21T00:00:00+00:00"))
    at_nine_in_new_york = ReadService(projections.repo, FixedClock("2026-03-21T01:00:00+00:00"))
    kept = await at_nine_in_new_york.streak(t.user_id)
    assert (kept.today.date, kept.today.status) == (date(2026, 3, 20), "pending")
    assert (kept.current_streak, kept.at_risk) == (6, True)
    assert kept.expires_at == datetime(2026, 3, 21, 4, tzinfo=UTC)

    done = FakeTracking()
    done.register("America/New_York")
    await apply(projections, occurred(done.take(), "2026-03-01T12:00:00+00:00"))
    goal = done.create_goal()
    for n in range(7):  # the 20th logged too, before the move
        done.create_log(goal, date(2026, 3, 14) + n * DAY, 30)
    done.set_timezone("Europe/Berlin")
    await apply(projections, occurred(done.take(), "2026-03-21T00:00:00+00:00"))
    stands = await at_nine_in_new_york.streak(done.user_id)
    assert (stands.today.date, stands.today.status) == (date(2026, 3, 21), "pending")
    assert stands.current_streak == 7


def break_event(user_id: str, kind: EventType, first: date, last: date, version: int) -> Envelope:
    payload = BreakPayload(
        break_id="b1", goal_id=None, start_date=first, end_date=last, kind="sick", version=version
    )
    return Envelope.create(kind, user_id, payload)


async def test_a_break_keeps_the_streak_over_its_days_until_it_is_deleted(
    projections: ProjectionService,
) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    today = today_utc()
    for back in (5, 4, 3, 0):  # two days missed before today
        t.create_log(goal, today - back * DAY, 30)
    await apply(projections, t.take())
    reads = ReadService(projections.repo)
    assert (await reads.streak(t.user_id)).current_streak == 1
    sick = (today - 2 * DAY, today - DAY)
    await apply(projections, [break_event(t.user_id, EventType.BREAK_CREATED, *sick, 1)])
    kept = await reads.streak(t.user_id)
    assert (kept.current_streak, kept.longest_streak) == (4, 4)
    await apply(projections, [break_event(t.user_id, EventType.BREAK_DELETED, *sick, 2)])
    assert (await reads.streak(t.user_id)).current_streak == 1
    # The creation delivered again after the deletion: the tombstone is newer, it stays.
    await apply(projections, [break_event(t.user_id, EventType.BREAK_CREATED, *sick, 1)])
    assert (await reads.streak(t.user_id)).current_streak == 1


def settings_event(
    user_id: str, kind: EventType, effective: date, goal_minutes: int, **extra: Any
) -> Envelope:
    """A user.* event whose settings apply from ``effective``, sent that day at noon UTC."""
    payload = UserPayload(
        timezone="UTC", daily_goal_minutes=goal_minutes, effective_date=effective, **extra
    )
    at = datetime.combine(effective, datetime.min.time(), UTC) + timedelta(hours=12)
    return occurred([Envelope.create(kind, user_id, payload)], at)[0]


async def test_restored_settings_rejudge_the_days_from_the_oldest_they_restore(
    projections: ProjectionService,
) -> None:
    """An import restores settings of days before the account: the days from the oldest
    restored date on are judged again, not only those from the event's own date."""
    t = FakeTracking()
    today = today_utc()
    joined = settings_event(t.user_id, EventType.USER_REGISTERED, today - 20 * DAY, 1)
    goal = t.create_goal()
    for back in range(15, 31):  # 16 days of 10 minutes, 30 to 15 days ago
        t.create_log(goal, today - back * DAY, 10)
    await apply(projections, [joined, *t.take()])
    reads = ReadService(projections.repo)
    assert (await reads.streak(t.user_id)).longest_streak == 16
    restored = PastDaySettings(
        effective_date=today - 40 * DAY, timezone="UTC", daily_goal_minutes=30
    )
    imported = settings_event(t.user_id, EventType.USER_UPDATED, today, 1, restored=[restored])
    await apply(projections, [imported])
    # Up to 21 days ago the restored goal of 30 minutes judges them: 6 days stay active.
    assert (await reads.streak(t.user_id)).longest_streak == 6


async def test_settings_dropped_past_the_horizon_rejudge_every_day(
    projections: ProjectionService,
) -> None:
    """A change whose horizon passes an older change drops the one before it; the days
    that one judged are judged again by the oldest kept (rules.kept_settings)."""
    t = FakeTracking()
    today = today_utc()
    joined = settings_event(t.user_id, EventType.USER_REGISTERED, today - 1500 * DAY, 1)
    stricter = settings_event(t.user_id, EventType.USER_UPDATED, today - 1200 * DAY, 30)
    goal = t.create_goal()
    for back in range(1396, 1401):  # 5 days of 10 minutes under the first settings
        t.create_log(goal, today - back * DAY, 10)
    await apply(projections, [joined, stricter, *t.take()])
    reads = ReadService(projections.repo)
    assert (await reads.streak(t.user_id)).longest_streak == 5
    relaxed = settings_event(t.user_id, EventType.USER_UPDATED, today, 1)
    await apply(projections, [relaxed])
    user = await projections.repo.get_user(t.user_id)
    assert user is not None and [s.daily_goal_minutes for s in user.day_settings] == [30, 1]
    assert (await reads.streak(t.user_id)).longest_streak == 0


class CommitRacedRepository(ProjectionRepository):
    """The real repository; ``before_commit`` runs once, just before a user commit."""

    before_commit: Callable[[], Awaitable[None]] | None = None

    async def commit_user(self, user: UserProjection, expected_version: int) -> bool:
        hook, self.before_commit = self.before_commit, None
        if hook is not None:
            await hook()
        return await super().commit_user(user, expected_version)


async def test_a_deletion_losing_its_commit_to_another_replica_tries_again(
    projections: ProjectionService,
) -> None:
    """Another replica commits the user between the deletion's read and its tombstone:
    the tombstone's guard fails, and the deletion must start over, not wipe and stop (the
    user would stay live, its goals kept, and later events would count again)."""
    raced = CommitRacedRepository(projections.repo.db)
    t = FakeTracking()
    goal = t.create_goal()
    t.create_log(goal, date(2026, 3, 5), 40)
    await apply(projections, t.take())
    t.activate_goal(goal)
    other_replicas_events = t.take()
    t.delete_user()

    async def the_other_replica_commits_first() -> None:
        await apply(projections, other_replicas_events)

    raced.before_commit = the_other_replica_commits_first
    await apply(ProjectionService(raced), t.take())
    user = await raced.get_user(t.user_id)
    assert user is not None and user.deleted and user.goals == {}
    assert await stored_days(raced, t.user_id) == {}


async def test_a_break_moved_into_the_recent_window_rejudges_the_days_it_left(
    projections: ProjectionService,
) -> None:
    """Days older than the recent window live in the kept folds: a break moved from there
    into the window must refold from its old start, where the days it left are missed
    again (refolding from its new start would keep them as a break)."""
    t = FakeTracking()
    goal = t.create_goal()
    today = today_utc()
    for back in (16, 15, 14, 13, 10, 9):  # missed: 12 and 11 days ago
        t.create_log(goal, today - back * DAY, 30)
    await apply(projections, t.take())
    reads = ReadService(projections.repo)
    assert (await reads.streak(t.user_id)).longest_streak == 4
    first = break_event(t.user_id, EventType.BREAK_CREATED, today - 12 * DAY, today - 11 * DAY, 1)
    await apply(projections, [first])
    assert (await reads.streak(t.user_id)).longest_streak == 6
    later = break_event(t.user_id, EventType.BREAK_UPDATED, today - 3 * DAY, today - 2 * DAY, 2)
    await apply(projections, [later])
    assert (await reads.streak(t.user_id)).longest_streak == 4


class TargetRacedRepository(ProjectionRepository):
    """The real repository; ``before_put_target`` runs once, just before a target write."""

    before_put_target: Callable[[], Awaitable[None]] | None = None

    async def put_target(self, fact: TargetFact) -> bool:
        hook, self.before_put_target = self.before_put_target, None
        if hook is not None:
            await hook()
        return await super().put_target(fact)


async def test_a_target_written_while_its_user_is_deleted_is_wiped(
    projections: ProjectionService,
) -> None:
    """The user's deletion (tombstone and wipe, on another replica) lands between the
    target event's check of the user and its write: the target must not outlive it."""
    raced = TargetRacedRepository(projections.repo.db)
    t = FakeTracking()
    goal = t.create_goal()
    await apply(projections, t.take())
    t.set_target(goal, date(2026, 3, 2), 120)
    target_events = t.take()
    t.delete_user()
    deletion = t.take()

    async def the_deletion_lands_first() -> None:
        await apply(projections, deletion)

    raced.before_put_target = the_deletion_lands_first
    await apply(ProjectionService(raced), target_events)
    assert await raced.targets_of_user(t.user_id) == []


async def test_an_update_overtaking_within_one_month_recounts_the_day_it_left(
    projections: ProjectionService,
) -> None:
    """v1 on March 5, v2 moves it to March 10, v3 to March 12; v3 arrives first. It says
    it left March 10, but the month holds it on March 5: that day is recounted too. On
    March 14, so that the days are in the user's recent days."""
    service = ProjectionService(projections.repo, FixedClock("2026-03-14T12:00:00+00:00"))
    t = FakeTracking()
    v2, v3 = await moved_twice(service, t, date(2026, 3, 5), date(2026, 3, 10), date(2026, 3, 12))
    await apply(service, [v3])
    user = await projections.repo.get_user(t.user_id)
    assert user is not None and {d: day.t for d, day in user.recent_days.items()} == {
        "2026-03-12": 40
    }
    await apply(service, [v2])  # late: changes nothing
    await projection_matches(projections.repo, t)
