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

from analytics_support import CrashError, CrashingRepository, FakeTracking, projection_matches
from conftest import SettingsFactory
from hypothesis import given, settings
from hypothesis import strategies as st
from momentum_analytics.projections.service import ProjectionService
from momentum_analytics.reads.service import ReadService
from momentum_libs.events import Envelope, EventType

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
