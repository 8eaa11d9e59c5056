"""Test helpers: a stand-in for tracking-service, and an independent recomputation."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bson import ObjectId
from momentum_analytics.projections.models import UserProjection
from momentum_analytics.projections.repository import ProjectionRepository
from momentum_libs.events import (
    Envelope,
    EventType,
    GoalDeletedPayload,
    GoalPayload,
    LogPayload,
    LogState,
    LogUpdatedPayload,
    TargetPayload,
    UserDeletedPayload,
    UserPayload,
)
from momentum_libs.tracking_store import GOALS, LOGS, TARGETS, document_id
from pymongo import ReplaceOne
from redis.asyncio import Redis


@dataclass
class Log:
    goal_id: str
    date: date
    minutes: int
    version: int = 1
    deleted: bool = False


@dataclass
class Goal:
    title: str
    is_active: bool
    activated_at: datetime | None
    version: int = 1
    deleted: bool = False


@dataclass
class Target:
    goal_id: str
    week_start: date
    target_minutes: int
    version: int = 1
    deleted: bool = False


@dataclass
class FakeTracking:
    """Plays tracking-service for one user: keeps its state, emits its events.

    Events pile up in ``pending`` until :meth:`flush` XADDs them (as tracking's relay
    would); :meth:`save` writes tracking's documents for the rebuild.
    """

    user_id: str = field(default_factory=lambda: str(ObjectId()))
    logs: dict[str, Log] = field(default_factory=dict)
    goals: dict[str, Goal] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    pending: list[Envelope] = field(default_factory=list)
    sent: list[Envelope] = field(default_factory=list)

    def _emit(self, kind: EventType, payload: Any) -> Envelope:
        envelope = Envelope.create(kind, self.user_id, payload)
        self.pending.append(envelope)
        return envelope

    def register(self, timezone: str = "UTC") -> None:
        self._emit(EventType.USER_REGISTERED, UserPayload(timezone=timezone))

    def set_timezone(self, timezone: str) -> None:
        self._emit(EventType.USER_UPDATED, UserPayload(timezone=timezone))

    def delete_user(self) -> None:
        self._emit(EventType.USER_DELETED, UserDeletedPayload())

    def _goal_event(self, kind: EventType, goal_id: str) -> None:
        g = self.goals[goal_id]
        self._emit(
            kind,
            GoalPayload(
                goal_id=goal_id,
                title=g.title,
                is_active=g.is_active,
                version=g.version,
                activated_at=g.activated_at,
            ),
        )

    def create_goal(self, title: str = "Learn piano", active: bool = True) -> str:
        goal_id = str(ObjectId())
        if active:
            self._deactivate_others()
        now = datetime.now(UTC) if active else None
        self.goals[goal_id] = Goal(title, active, now)
        self._goal_event(EventType.GOAL_CREATED, goal_id)
        return goal_id

    def _deactivate_others(self) -> None:
        for gid, g in self.goals.items():
            if g.is_active and not g.deleted:
                g.is_active = False
                g.version += 1
                self._goal_event(EventType.GOAL_UPDATED, gid)

    def activate_goal(self, goal_id: str) -> None:
        self._deactivate_others()
        g = self.goals[goal_id]
        g.is_active, g.activated_at = True, datetime.now(UTC)
        g.version += 1
        self._goal_event(EventType.GOAL_ACTIVATED, goal_id)

    def delete_goal(self, goal_id: str) -> None:
        g = self.goals[goal_id]
        g.deleted, g.is_active = True, False
        g.version += 1
        self._emit(EventType.GOAL_DELETED, GoalDeletedPayload(goal_id=goal_id, version=g.version))
        for log_id, entry in self.logs.items():
            if entry.goal_id == goal_id and not entry.deleted:
                self.delete_log(log_id)

    def set_target(self, goal_id: str, week_start: date, minutes: int) -> str:
        for tid, t in self.targets.items():
            if t.goal_id == goal_id and t.week_start == week_start and not t.deleted:
                t.target_minutes = minutes
                t.version += 1
                self._target_event(EventType.TARGET_UPDATED, tid)
                return tid
        tid = str(ObjectId())
        self.targets[tid] = Target(goal_id, week_start, minutes)
        self._target_event(EventType.TARGET_CREATED, tid)
        return tid

    def delete_target(self, target_id: str) -> None:
        t = self.targets[target_id]
        t.deleted = True
        t.version += 1
        self._target_event(EventType.TARGET_DELETED, target_id)

    def _target_event(self, kind: EventType, target_id: str) -> None:
        t = self.targets[target_id]
        self._emit(
            kind,
            TargetPayload(
                target_id=target_id,
                goal_id=t.goal_id,
                week_start=t.week_start,
                target_minutes=t.target_minutes,
                version=t.version,
            ),
        )

    def create_log(self, goal_id: str, day: date, minutes: int, log_id: str | None = None) -> str:
        log_id = log_id or str(ObjectId())
        self.logs[log_id] = Log(goal_id, day, minutes)
        self._emit(
            EventType.LOG_CREATED,
            LogPayload(log_id=log_id, goal_id=goal_id, date=day, minutes=minutes, version=1),
        )
        return log_id

    def update_log(
        self,
        log_id: str,
        *,
        day: date | None = None,
        minutes: int | None = None,
        goal_id: str | None = None,
    ) -> None:
        entry = self.logs[log_id]
        old = LogState(goal_id=entry.goal_id, date=entry.date, minutes=entry.minutes)
        entry.date = day or entry.date
        entry.minutes = minutes or entry.minutes
        entry.goal_id = goal_id or entry.goal_id
        entry.version += 1
        new = LogState(goal_id=entry.goal_id, date=entry.date, minutes=entry.minutes)
        self._emit(
            EventType.LOG_UPDATED,
            LogUpdatedPayload(log_id=log_id, version=entry.version, old=old, new=new),
        )

    def delete_log(self, log_id: str) -> None:
        entry = self.logs[log_id]
        entry.deleted = True
        entry.version += 1
        self._emit(
            EventType.LOG_DELETED,
            LogPayload(
                log_id=log_id,
                goal_id=entry.goal_id,
                date=entry.date,
                minutes=entry.minutes,
                version=entry.version,
            ),
        )

    def take(self) -> list[Envelope]:
        events, self.pending = self.pending, []
        self.sent.extend(events)
        return events

    async def flush(self, redis: Redis, stream: str) -> int:
        return await publish(redis, stream, self.take())

    async def save(self, db: Any) -> None:
        """Write tracking's documents (what the rebuild reads), live and tombstoned."""
        logs = [
            ReplaceOne(
                {"_id": document_id(lid)},
                {
                    # nx-27017 ignores the filter's _id on an upsert: repeat it here.
                    "_id": document_id(lid),
                    "user_id": self.user_id,
                    "goal_id": e.goal_id,
                    "date": e.date.isoformat(),
                    "minutes": e.minutes,
                    "version": e.version,
                    "deleted": e.deleted,
                    "note": None,
                },
                upsert=True,
            )
            for lid, e in self.logs.items()
        ]
        goals = [
            ReplaceOne(
                {"_id": ObjectId(gid)},
                {
                    # nx-27017 ignores the filter's _id on an upsert: repeat it here.
                    "_id": ObjectId(gid),
                    "user_id": self.user_id,
                    "title": g.title,
                    "is_active": g.is_active,
                    "activated_at": g.activated_at,
                    "version": g.version,
                    "deleted": g.deleted,
                },
                upsert=True,
            )
            for gid, g in self.goals.items()
        ]
        targets = [
            ReplaceOne(
                {"_id": ObjectId(tid)},
                {
                    # nx-27017 ignores the filter's _id on an upsert: repeat it here.
                    "_id": ObjectId(tid),
                    "user_id": self.user_id,
                    "goal_id": t.goal_id,
                    "week_start": t.week_start.isoformat(),
                    "target_minutes": t.target_minutes,
                    "version": t.version,
                    "deleted": t.deleted,
                },
                upsert=True,
            )
            for tid, t in self.targets.items()
        ]
        for name, ops in ((LOGS, logs), (GOALS, goals), (TARGETS, targets)):
            if ops:
                await db[name].bulk_write(ops, ordered=False)

    # -- the independent recomputation ----------------------------------------------------
    def day_minutes(self, goal_id: str | None = None) -> dict[date, int]:
        days: dict[date, int] = {}
        for e in self.logs.values():
            goal = self.goals.get(e.goal_id)
            if e.deleted or (goal is not None and goal.deleted):
                continue
            if goal_id is not None and e.goal_id != goal_id:
                continue
            days[e.date] = days.get(e.date, 0) + e.minutes
        return days

    def total(self) -> int:
        return sum(self.day_minutes().values())


def streak_of(days: dict[date, int], today: date) -> tuple[int, int, date | None]:
    """(current, longest, last active day), by walking the days one by one."""
    active = sorted(d for d, m in days.items() if m > 0)
    longest = run = 0
    previous: date | None = None
    for d in active:
        run = run + 1 if previous is not None and d - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = d
    anchor = today if days.get(today, 0) > 0 else today - timedelta(days=1)
    current = 0
    while days.get(anchor, 0) > 0:
        current += 1
        anchor -= timedelta(days=1)
    return current, longest, (active[-1] if active else None)


async def publish(redis: Redis, stream: str, events: list[Envelope]) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for envelope in events:
            pipe.xadd(stream, envelope.to_stream_fields())  # type: ignore[arg-type]
        await pipe.execute()
    return len(events)


async def drained(redis: Redis, stream: str, group: str) -> bool:
    """Every entry of the stream delivered to the group and acknowledged."""
    info = await redis.xinfo_stream(stream)
    last = info["last-generated-id"]
    groups = {g["name"]: g for g in await redis.xinfo_groups(stream)}
    mine = groups.get(group.encode()) or groups.get(group)
    if mine is None:
        return False
    return bool(mine["last-delivered-id"] == last and mine["pending"] == 0)


class CrashError(RuntimeError):
    """The process died here."""


class CrashingRepository(ProjectionRepository):
    """The real repository, dying once between the month writes and the user's commit."""

    crash_next_commit = False

    async def commit_user(self, user: UserProjection, expected_version: int) -> bool:
        if self.crash_next_commit:
            self.crash_next_commit = False
            raise CrashError
        return await super().commit_user(user, expected_version)


async def projection_matches(repo: Any, tracker: FakeTracking) -> None:
    """Assert the stored projection of ``tracker``'s user equals a recomputation from scratch."""
    from momentum_analytics.projections.models import DayTotal
    from momentum_analytics.projections.service import folds_from

    user = await repo.get_user(tracker.user_id)
    expected = tracker.day_minutes()
    months = (await repo.months_of_user(tracker.user_id)).values()
    stored = {
        date.fromisoformat(d): day.t for doc in months for d, day in doc.days.items() if day.t
    }
    assert stored == expected
    per_goal: dict[str, dict[date, int]] = {}
    for doc in months:
        for d, day in doc.days.items():
            for gid, minutes in day.g.items():
                per_goal.setdefault(gid, {})[date.fromisoformat(d)] = minutes
    for gid in tracker.goals:
        assert per_goal.get(gid, {}) == tracker.day_minutes(gid), gid
    if user is None:
        assert not expected
        return
    assert user.total_minutes == tracker.total()
    # The window the dashboard reads holds exactly the stored days from its start on.
    assert user.recent_from is not None
    first = user.recent_from.isoformat()
    in_window = {d: day for doc in months for d, day in doc.days.items() if d >= first}
    assert user.recent_days == in_window
    # The streak folds kept (moved on event by event) are those of tracking's days folded
    # from scratch up to the same day (the rules themselves: test_streak_rules.py).
    assert user.folds_at == user.recent_from
    truth = {
        d.isoformat(): DayTotal(
            t=m, g={gid: ms for gid in tracker.goals if (ms := tracker.day_minutes(gid).get(d))}
        )
        for d, m in expected.items()
    }
    assert user.folds == folds_from(user, truth, date.min, user.recent_from, {})
    live_goals = {gid: g for gid, g in tracker.goals.items() if not g.deleted and g.is_active}
    if live_goals:
        assert user.active_goal is not None and user.active_goal.id in live_goals
    else:
        assert user.active_goal is None
