"""Properties: any history of logs, goals, targets and timezones, delivered duplicated, out
of order (updates overtaking the ones before), with crashes between the month writes and
the user's commit, and spread over replicas applying one user's events at once, leaves
the projection equal to a recomputation from scratch over tracking's final state.

Example counts come from the hypothesis profile (``conftest.py``): ``ci`` by default,
``--hypothesis-profile=thorough`` for a longer hunt.
"""

import asyncio
import random
from datetime import date, timedelta
from typing import Any

import bson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from momentum_analytics.projections.models import TOMBSTONES_KEPT
from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.projections.service import LateLogEventError, ProjectionService
from momentum_analytics.reads.service import ReadService
from momentum_analytics.rebuild.source import TrackingSource
from momentum_libs.events import Envelope, EventType

from .analytics_support import CrashError, CrashingRepository, FakeTracking, projection_matches
from .conftest import SettingsFactory

BASE = date(2026, 1, 10)  # offsets reach back into 2025: year documents are crossed
GOALS = 3
TIMEZONES = ("UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Paris")

op = st.one_of(
    st.tuples(
        st.just("create"), st.integers(0, 11), st.integers(0, 40), st.integers(1, 300),
        st.integers(0, GOALS - 1),
    ),
    st.tuples(
        st.just("update"), st.integers(0, 11), st.none() | st.integers(0, 40),
        st.none() | st.integers(1, 300), st.none() | st.integers(0, GOALS - 1),
    ),
    st.tuples(st.just("delete"), st.integers(0, 11)),
    st.tuples(st.just("delete_goal"), st.integers(1, GOALS - 1)),
    st.tuples(
        st.just("target"), st.integers(0, GOALS - 1), st.integers(0, 5), st.integers(1, 600)
    ),
    st.tuples(st.just("delete_target"), st.integers(0, GOALS - 1), st.integers(0, 5)),
    st.tuples(st.just("timezone"), st.sampled_from(TIMEZONES)),
)  # fmt: skip


def week(offset: int) -> date:
    monday = BASE - timedelta(days=BASE.weekday())
    return monday - timedelta(weeks=offset)


def play(ops: list[tuple[Any, ...]]) -> FakeTracking:
    t = FakeTracking()
    t.register("UTC")
    goals = [t.create_goal(f"g{i}", active=i == 0) for i in range(GOALS)]
    slots: dict[int, str] = {}

    def live_goal(i: int) -> bool:
        return not t.goals[goals[i]].deleted

    def live_target(goal: int, offset: int) -> str | None:
        return next(
            (
                tid
                for tid, target in t.targets.items()
                if target.goal_id == goals[goal] and target.week_start == week(offset)
                if not target.deleted
            ),
            None,
        )

    for step in ops:
        kind = step[0]
        if kind in ("create", "update", "delete"):
            log_id = slots.get(step[1])
            live = log_id is not None and not t.logs[log_id].deleted
            if kind == "create" and not live and live_goal(step[4]):
                slots[step[1]] = t.create_log(
                    goals[step[4]], BASE - timedelta(days=step[2]), step[3]
                )
            elif kind == "update" and live and (step[4] is None or live_goal(step[4])):
                assert log_id is not None
                t.update_log(
                    log_id,
                    day=None if step[2] is None else BASE - timedelta(days=step[2]),
                    minutes=step[3],
                    goal_id=None if step[4] is None else goals[step[4]],
                )
            elif kind == "delete" and live:
                assert log_id is not None
                t.delete_log(log_id)
        elif kind == "delete_goal" and live_goal(step[1]):
            t.delete_goal(goals[step[1]])
        elif kind == "target" and live_goal(step[1]):
            t.set_target(goals[step[1]], week(step[2]), step[3])
        elif kind == "delete_target" and (target_id := live_target(step[1], step[2])):
            t.delete_target(target_id)
        elif kind == "timezone":
            t.set_timezone(step[1])
    return t


async def everything_matches(service: ProjectionService, t: FakeTracking) -> None:
    """The days, totals, streak and active goal, then each live goal's weekly targets and
    the user's timezone, against tracking's final state."""
    await projection_matches(service.repo, t)
    reads = ReadService(service.repo)
    for goal_id, goal in t.goals.items():
        if goal.deleted:
            continue
        for offset in range(6):
            expected = [
                target.target_minutes
                for target in t.targets.values()
                if target.goal_id == goal_id and target.week_start == week(offset)
                if not target.deleted
            ]
            summary = await reads.weekly_summary(t.user_id, week(offset), goal_id)
            assert summary.target_minutes == (expected[0] if expected else None)
    user = await service.repo.get_user(t.user_id)
    assert user is not None
    zones = [e for e in t.sent if e.type in (EventType.USER_REGISTERED, EventType.USER_UPDATED)]
    latest = max(e.occurred_at for e in zones)
    # Events stamped at the same instant are in no defined order: any of them may win.
    assert user.timezone in {e.payload["timezone"] for e in zones if e.occurred_at == latest}


async def deliver(
    service: ProjectionService, deliveries: list[Envelope], crashes: set[int]
) -> None:
    """Handle each delivery; the n-th in ``crashes`` dies before its user commit (if it
    gets that far) and is delivered again later, as an unacknowledged entry is."""
    repo = service.repo
    assert isinstance(repo, CrashingRepository)
    queue = list(deliveries)
    n = 0
    while queue:
        envelope = queue.pop(0)
        repo.crash_next_commit = n in crashes
        n += 1
        try:
            await service.handle(envelope)
        except CrashError:
            queue.insert(len(queue) // 2, envelope)
        repo.crash_next_commit = False


def crashing_service(projections: ProjectionService) -> ProjectionService:
    return ProjectionService(CrashingRepository(projections.repo.db))


@given(
    ops=st.lists(op, min_size=1, max_size=30),
    seed=st.integers(0, 2**32 - 1),
    duplicates=st.integers(0, 10),
    crashes=st.sets(st.integers(0, 40), max_size=4),
)
async def test_any_delivery_order_gives_the_recomputed_projection(
    projections: ProjectionService,
    ops: list[tuple[Any, ...]],
    seed: int,
    duplicates: int,
    crashes: set[int],
) -> None:
    t = play(ops)
    events = t.take()
    rng = random.Random(seed)
    deliveries = events + [rng.choice(events) for _ in range(duplicates)]
    rng.shuffle(deliveries)
    service = crashing_service(projections)
    await deliver(service, deliveries, crashes)
    await everything_matches(service, t)


@given(
    ops=st.lists(op, min_size=5, max_size=30),
    seed=st.integers(0, 2**32 - 1),
    crashes=st.sets(st.integers(0, 15), max_size=2),
)
@settings(max_examples=max(5, settings.default.max_examples // 4))
async def test_replicas_applying_one_users_events_at_once_agree(
    projections: ProjectionService,
    ops: list[tuple[Any, ...]],
    seed: int,
    crashes: set[int],
) -> None:
    """Three replicas take the events of one user in parallel (the group spreads them),
    each in stream order, each crashing now and then before a commit."""
    t = play(ops)
    rng = random.Random(seed)
    shares: list[list[Envelope]] = [[], [], []]
    for envelope in t.take():
        shares[rng.randrange(3)].append(envelope)
    replicas = [crashing_service(projections) for _ in shares]
    await asyncio.gather(
        *(deliver(r, share, crashes) for r, share in zip(replicas, shares, strict=True))
    )
    await everything_matches(replicas[0], t)


async def test_in_order_delivery_of_a_long_history_with_deep_edits(
    projections: ProjectionService,
) -> None:
    """Many runs (more than the state keeps exactly), then edits deep in the past."""
    t = FakeTracking()
    goal = t.create_goal()
    logs = [t.create_log(goal, BASE - timedelta(days=3 * n), 10 + n) for n in range(30)]
    for envelope in t.take():
        await projections.handle(envelope)
    await projection_matches(projections.repo, t)
    t.create_log(goal, BASE - timedelta(days=3 * 25 + 1), 5)  # joins two old runs
    t.create_log(goal, BASE - timedelta(days=3 * 25 + 2), 5)
    t.delete_log(logs[1])
    t.update_log(logs[29], day=BASE + timedelta(days=1))
    for envelope in t.take():
        await projections.handle(envelope)
    await projection_matches(projections.repo, t)


def test_settings_factory_is_typed(make_settings: SettingsFactory) -> None:
    assert make_settings().consumer_group == "analytics"


# -- bounded month documents -----------------------------------------------------------
KEPT = 3
"""Deleted entries a month keeps in the tests below: low, so they drop some every time."""

churn = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 5), st.integers(0, 45), st.integers(1, 300)),
    st.tuples(st.just("move"), st.integers(0, 5), st.integers(0, 45)),
    st.tuples(st.just("delete"), st.integers(0, 5)),
)  # fmt: skip


def play_churn(ops: list[tuple[Any, ...]]) -> FakeTracking:
    """Logs created, moved (across two months) and deleted over a few slots."""
    t = FakeTracking()
    t.register("UTC")
    goal = t.create_goal()
    slots: dict[int, str] = {}
    for step in ops:
        log_id = slots.get(step[1])
        live = log_id is not None and not t.logs[log_id].deleted
        if step[0] == "create" and not live:
            slots[step[1]] = t.create_log(goal, BASE - timedelta(days=step[2]), step[3])
        elif step[0] == "move" and live:
            assert log_id is not None
            t.update_log(log_id, day=BASE - timedelta(days=step[2]))
        elif step[0] == "delete" and live:
            assert log_id is not None
            t.delete_log(log_id)
    return t


def shuffled_within(
    events: list[Envelope], window: int, duplicates: int, seed: int
) -> list[Envelope]:
    """The events with duplicates, each delivered at most ``window`` places from its own."""
    rng = random.Random(seed)
    keyed = [(i + rng.random() * window, e) for i, e in enumerate(events)]
    for _ in range(duplicates):
        i = rng.randrange(len(events))
        keyed.append((i + rng.random() * window, events[i]))
    return [e for _, e in sorted(keyed, key=lambda pair: pair[0])]


async def month_sizes(service: ProjectionService, user_id: str) -> list[tuple[int, int]]:
    """(BSON bytes, deleted entries) of each stored month of the user."""
    cursor = service.repo.months.find({"user_id": user_id})
    return [
        (len(bson.encode(doc)), sum(1 for e in doc["logs"].values() if e["deleted"]))
        async for doc in cursor
    ]


@given(
    ops=st.lists(churn, min_size=1, max_size=60),
    seed=st.integers(0, 2**32 - 1),
    duplicates=st.integers(0, 15),
)
async def test_months_drop_deleted_entries_and_stay_exact(
    projections: ProjectionService, ops: list[tuple[Any, ...]], seed: int, duplicates: int
) -> None:
    """Reordered and duplicated deliveries (each at most KEPT places from its own) of logs
    created, moved and deleted: the projection is exact and no month keeps more than KEPT
    deleted entries. (A delivery later than that is dead-lettered, never applied: see the
    test below.)"""
    t = play_churn(ops)
    service = ProjectionService(ProjectionRepository(projections.repo.db, tombstones_kept=KEPT))
    for envelope in shuffled_within(t.take(), KEPT, duplicates, seed):
        await service.handle(envelope)
    await projection_matches(service.repo, t)
    assert all(deleted <= KEPT for _, deleted in await month_sizes(service, t.user_id))


async def test_an_old_event_of_a_log_whose_entry_was_dropped_is_refused(
    projections: ProjectionService,
) -> None:
    """The creation of a log delivered again after its deletion and more than KEPT others:
    its deleted entry is gone, and the event is refused (dead-lettered), not applied."""
    t = FakeTracking()
    goal = t.create_goal()
    first = t.create_log(goal, BASE, 30)
    creation = t.pending[-1]
    t.delete_log(first)
    for n in range(KEPT + 1):
        t.delete_log(t.create_log(goal, BASE, 10 + n))
    service = ProjectionService(ProjectionRepository(projections.repo.db, tombstones_kept=KEPT))
    for envelope in t.take():
        await service.handle(envelope)
    months = await service.repo.months_of_user(t.user_id)
    assert first not in months[BASE.isoformat()[:7]].logs  # its deleted entry was dropped
    with pytest.raises(LateLogEventError):
        await service.handle(creation)
    await projection_matches(service.repo, t)


def with_tracking_lookup(projections: ProjectionService, kept: int = KEPT) -> ProjectionService:
    """A service that asks tracking's documents (saved by FakeTracking.save in the same
    database) when the months cannot tell, as the running service does."""
    tracking = TrackingSource(projections.repo.db)
    repo = ProjectionRepository(projections.repo.db, tombstones_kept=kept)
    return ProjectionService(repo, log_is_live=tracking.log_is_live)


def churned_month(t: FakeTracking) -> str:
    """A goal, and KEPT + 1 logs created and deleted in BASE's month: some entries dropped."""
    goal = t.create_goal()
    for n in range(KEPT + 1):
        t.delete_log(t.create_log(goal, BASE, 10 + n))
    return goal


async def test_a_new_log_whose_id_sorts_below_a_dropped_one_is_counted(
    projections: ProjectionService,
) -> None:
    """A client's random UUID (or another process's ObjectId) may sort below the highest
    dropped id: tracking's document shows it is a new log, and it is counted, not
    dead-lettered as a deleted one coming back."""
    t = FakeTracking()
    goal = churned_month(t)
    service = with_tracking_lookup(projections)
    for envelope in t.take():
        await service.handle(envelope)
    months = await service.repo.months_of_user(t.user_id)
    low = "00000000-0000-4000-8000-000000000001"
    assert months[BASE.isoformat()[:7]].may_have_dropped(low)
    t.create_log(goal, BASE, 42, log_id=low)
    await t.save(projections.repo.db)
    for envelope in t.take():
        await service.handle(envelope)
    await projection_matches(service.repo, t)


async def test_an_old_event_of_a_dropped_log_is_ignored_by_tracking_s_word(
    projections: ProjectionService,
) -> None:
    """The creation of a deleted log delivered again after its entry was dropped: its
    tombstone in tracking says it is gone, and the event changes nothing."""
    t = FakeTracking()
    goal = t.create_goal()
    first = t.create_log(goal, BASE, 30)
    creation = t.pending[-1]
    t.delete_log(first)
    churned_month(t)
    await t.save(projections.repo.db)
    service = with_tracking_lookup(projections)
    for envelope in t.take():
        await service.handle(envelope)
    assert first not in (await service.repo.months_of_user(t.user_id))[BASE.isoformat()[:7]].logs
    await service.handle(creation)
    await projection_matches(service.repo, t)


async def test_an_old_event_of_a_log_live_elsewhere_changes_nothing(
    projections: ProjectionService,
) -> None:
    """A log moved to another month, its deleted entry in the first one dropped: its
    creation delivered again is older than its live entry, and is ignored."""
    t = FakeTracking()
    goal = t.create_goal()
    moved = t.create_log(goal, BASE, 30)
    creation = t.pending[-1]
    t.update_log(moved, day=BASE - timedelta(days=40))
    for n in range(KEPT + 1):
        t.delete_log(t.create_log(goal, BASE, 10 + n))
    service = ProjectionService(ProjectionRepository(projections.repo.db, tombstones_kept=KEPT))
    for envelope in t.take():
        await service.handle(envelope)
    assert moved not in (await service.repo.months_of_user(t.user_id))[BASE.isoformat()[:7]].logs
    await service.handle(creation)
    await projection_matches(service.repo, t)


async def test_ten_thousand_create_delete_cycles_keep_the_month_small(
    projections: ProjectionService,
) -> None:
    """One user creating and deleting a log 10,000 times in one month, delivered in the
    consumer's batches of 100, reordered within a batch and with duplicates: the month
    document stays under 64 KB and the projection exact."""
    t = FakeTracking()
    goal = t.create_goal()
    for n in range(10_000):
        log_id = t.create_log(goal, BASE - timedelta(days=n % 9), 1 + n % 50)
        if n % 2_500:  # a few stay
            t.delete_log(log_id)
    events = t.take()
    await t.save(projections.repo.db)
    # The ObjectIds of one process may wrap their counter mid-way: tracking's documents
    # tell a new low id from a dropped one (without them, ~0.06 % of runs dead-lettered).
    service = with_tracking_lookup(projections, TOMBSTONES_KEPT)
    deliveries = shuffled_within(events, 8, 500, seed=7)
    for start in range(0, len(deliveries), 100):
        await service.handle_batch(deliveries[start : start + 100])
    await projection_matches(service.repo, t)
    sizes = await month_sizes(service, t.user_id)
    assert len(sizes) == 1
    assert sizes[0][0] < 64 * 1024
