"""The streak rules through the real stores: random logs, breaks, setting changes and
timezone moves, applied as events by the consumer's handler (the window of recent days
and its checkpoint fold on the test clock), read back, then rebuilt from tracking's
documents: the live reads, the rebuilt reads and the reference from scratch
(test_streak_rules.reference) agree. A smaller sample than the pure property: each
example writes to MongoDB.
"""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bson import ObjectId
from hypothesis import given, settings
from momentum_analytics.projections.service import ProjectionService
from momentum_analytics.reads.service import ReadService
from momentum_analytics.rebuild.service import Rebuilder
from momentum_analytics.rebuild.source import TrackingSource
from momentum_libs import streak_rules as rules
from momentum_libs.clock import FileClock
from momentum_libs.events import (
    BreakPayload,
    Envelope,
    EventType,
    GoalPayload,
    LogPayload,
    UserPayload,
)
from momentum_libs.tracking_store import BREAKS, GOALS, LOGS
from test_streak_rules import (
    BASE,
    DAYS,
    T0,
    expected_state,
    history_of,
    logs_of,
    now_of,
    reference,
    scenario,
)


def events_of(uid: str, goal: str, s: dict[str, Any]) -> list[Envelope]:
    """What auth and tracking would publish for the scenario, each at its own time."""
    out: list[Envelope] = []

    def emit(kind: EventType, payload: Any, at: datetime) -> None:
        out.append(Envelope.create(kind, uid, payload).model_copy(update={"occurred_at": at}))

    for i, said in enumerate(history_of(s)):
        payload = UserPayload(
            timezone=said.timezone,
            day_start=said.day_start,
            rest_weekdays=sorted(said.rest_weekdays, key=rules.WEEKDAYS.index),
            daily_goal_minutes=said.daily_goal_minutes,
            effective_date=None if i == 0 else said.effective,
            effective_from=said.effective_from,
        )
        kind = EventType.USER_REGISTERED if i == 0 else EventType.USER_UPDATED
        emit(kind, payload, said.at)
    emit(
        EventType.GOAL_CREATED, GoalPayload(goal_id=goal, title="g", is_active=True, version=1), T0
    )
    for n, (off, length, gone) in enumerate(s["breaks"]):
        payload = BreakPayload(
            break_id=f"{uid}-b{n}",
            goal_id=None,
            start_date=BASE + timedelta(days=off),
            end_date=BASE + timedelta(days=off + length),
            kind="vacation",
            version=1,
        )
        emit(EventType.BREAK_CREATED, payload, T0)
        if gone:
            deleted = payload.model_copy(update={"version": 2})
            emit(EventType.BREAK_DELETED, deleted, T0)
    for day, minutes in logs_of(s).items():
        if minutes:
            log = LogPayload(
                log_id=f"{uid}-l{day}",
                goal_id=goal,
                date=day,
                minutes=minutes,
                version=1,
            )
            emit(EventType.LOG_CREATED, log, T0)
    return out


async def save_tracking(db: Any, uid: str, goal: str, s: dict[str, Any]) -> None:
    await db[GOALS].insert_one({"_id": goal, "user_id": uid, "title": "g", "is_active": True})
    logs = [
        {
            "_id": f"{uid}-l{day}",
            "user_id": uid,
            "goal_id": goal,
            "date": day.isoformat(),
            "minutes": m,
        }
        for day, m in logs_of(s).items()
        if m
    ]
    breaks = [
        {
            "_id": f"{uid}-b{n}",
            "user_id": uid,
            "goal_id": None,
            "start_date": (BASE + timedelta(days=off)).isoformat(),
            "end_date": (BASE + timedelta(days=off + length)).isoformat(),
            "kind": "vacation",
            "version": 1,
        }
        for n, (off, length, gone) in enumerate(s["breaks"])
        if not gone  # tracking erases a break that is deleted before it starts
    ]
    for name, docs in ((LOGS, logs), (BREAKS, breaks)):
        if docs:
            await db[name].insert_many(docs)


async def reads(service: ReadService, uid: str) -> tuple[Any, Any]:
    streak = await service.streak(uid)
    heat = await service.heatmap(uid, BASE - timedelta(days=1), BASE + timedelta(days=DAYS + 1))
    return streak, heat


@settings(settings.get_profile("ci"), max_examples=25)
@given(scenario)
async def test_live_projection_rebuild_and_reference_agree(
    projections: ProjectionService, tmp_path_factory: Any, s: dict[str, Any]
) -> None:
    path: Path = tmp_path_factory.mktemp("clock") / "now"
    clock = FileClock(path)
    clock.set(now_of(s))
    uid, goal = str(ObjectId()), str(ObjectId())
    live = ProjectionService(projections.repo, clock)
    await live.handle_batch(events_of(uid, goal, s))
    read = ReadService(projections.repo, clock)
    streak, heat = await reads(read, uid)

    ref = reference(s)
    assert streak.today.date == ref["today"]
    assert streak.current_streak == ref["current"]
    assert streak.expires_at == ref["expires"]
    assert streak.longest_streak == max(
        [ref["current"], *(n for _, _, n in ref["runs_before_today"])]
    )
    for day in heat.days:
        assert day.state == expected_state(ref, day.date), day
    before = await projections.repo.get_user(uid)
    assert before is not None

    tracking = projections.repo.db.client[projections.repo.db.name + "_tracking"]
    await save_tracking(tracking, uid, goal, s)
    await Rebuilder(projections.repo, TrackingSource(tracking), clock=clock).rebuild_user(uid)
    assert await reads(read, uid) == (streak, heat)
    rebuilt = await projections.repo.get_user(uid)
    assert rebuilt is not None
    assert (rebuilt.folds, rebuilt.folds_at, rebuilt.breaks, rebuilt.day_settings) == (
        before.folds,
        before.folds_at,
        before.breaks,
        before.day_settings,
    )
