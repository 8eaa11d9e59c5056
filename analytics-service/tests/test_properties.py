"""Property: any sequence of log changes, delivered duplicated and out of order, leaves the
projection equal to a recomputation from scratch over the final logs."""

import asyncio
import random
from datetime import date, timedelta
from typing import Any

from analytics_support import FakeTracking, projection_matches
from conftest import SettingsFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from momentum_analytics.projections.service import ProjectionService

BASE = date(2026, 1, 10)  # offsets reach back into 2025: year documents are crossed

op = st.one_of(
    st.tuples(
        st.just("create"), st.integers(0, 11), st.integers(0, 40), st.integers(1, 300),
        st.integers(0, 2),
    ),
    st.tuples(
        st.just("update"), st.integers(0, 11), st.none() | st.integers(0, 40),
        st.none() | st.integers(1, 300), st.none() | st.integers(0, 2),
    ),
    st.tuples(st.just("delete"), st.integers(0, 11)),
    st.tuples(st.just("delete_goal"), st.integers(0, 2)),
)  # fmt: skip


def play(ops: list[tuple[Any, ...]]) -> FakeTracking:
    t = FakeTracking()
    goals = [t.create_goal(f"g{i}", active=i == 0) for i in range(3)]
    slots: dict[int, str] = {}

    def live_goal(i: int) -> bool:
        return not t.goals[goals[i]].deleted

    for step in ops:
        kind, slot = step[0], step[1]
        log_id = slots.get(slot)
        live = log_id is not None and not t.logs[log_id].deleted
        if kind == "create" and not live and live_goal(step[4]):
            slots[slot] = t.create_log(goals[step[4]], BASE - timedelta(days=step[2]), step[3])
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
        elif kind == "delete_goal" and step[1] > 0 and live_goal(step[1]):
            t.delete_goal(goals[step[1]])
    return t


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(op, min_size=1, max_size=30),
    seed=st.integers(0, 2**32 - 1),
    duplicates=st.integers(0, 10),
)
async def test_any_delivery_order_gives_the_recomputed_projection(
    projections: ProjectionService, ops: list[tuple[Any, ...]], seed: int, duplicates: int
) -> None:
    t = play(ops)
    events = t.take()
    rng = random.Random(seed)
    deliveries = events + [rng.choice(events) for _ in range(duplicates)]
    rng.shuffle(deliveries)
    for envelope in deliveries:
        await projections.handle(envelope)
    await projection_matches(projections.repo, t)


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


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(op, min_size=5, max_size=30), seed=st.integers(0, 2**32 - 1))
async def test_replicas_applying_one_users_events_at_once_agree(
    projections: ProjectionService, ops: list[tuple[Any, ...]], seed: int
) -> None:
    """Three replicas take the events of one user in parallel (the group spreads them)."""
    t = play(ops)
    events = t.take()
    rng = random.Random(seed)
    shares: list[list[Any]] = [[], [], []]
    for envelope in events:
        shares[rng.randrange(3)].append(envelope)
    replicas = [ProjectionService(projections.repo) for _ in shares]

    async def replica(service: ProjectionService, share: list[Any]) -> None:
        for envelope in share:
            await service.handle(envelope)

    await asyncio.gather(*(replica(s, share) for s, share in zip(replicas, shares, strict=True)))
    await projection_matches(projections.repo, t)
