"""Recompute a user's projections from tracking's data while the service keeps serving.

One optimistic attempt per user, retried on conflict with the live consumer:

1. read the user's projection (its version guards the final commit), then our month
   documents, then tracking's documents (in that order: a log we hold that tracking no
   longer has was deleted there, since ids are never reused);
2. bring the months' logs up to tracking's state in memory (an entry newer than
   tracking's, written by the consumer meanwhile, wins) and recount every day;
3. write the changed months, each guarded by the version it was read at (losing any
   write retries the attempt), then commit the user's projection: month totals, recent
   days and streak computed from all the months.

``--all`` pages through the users (:meth:`Rebuilder.user_id_pages`) instead of gathering
them: one page of ids and ``concurrency`` users' documents are in memory at a time, so
10 million users take the memory of a thousand, and a stopped run resumes after the last
user id its progress lines name.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import structlog
from momentum_libs import streak_rules as rules
from momentum_libs.clock import Clock
from momentum_libs.tracking_store import StoredBreak, StoredGoal, StoredLog, StoredTarget

from momentum_analytics.projections.models import (
    GoalState,
    LogEntry,
    MonthDays,
    TargetFact,
    UserProjection,
    empty_month,
    month_of,
)
from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.projections.service import (
    folds_from,
    month_totals,
    pick_active_goal,
    place,
    recent_window,
    recount_days,
    retry_on_conflict,
)
from momentum_analytics.rebuild.source import TrackingSource

log = structlog.get_logger(__name__)

USER_PAGE = 1_000
"""Users read per page of ``--all``: each page's ids are rebuilt before the next is read."""


@dataclass
class RebuildReport:
    users: int = 0
    logs: int = 0
    seconds: float = 0.0

    @property
    def logs_per_second(self) -> float:
        return self.logs / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "logs": self.logs,
            "seconds": round(self.seconds, 3),
            "logs_per_second": round(self.logs_per_second),
        }


def merge_logs(user_id: str, months: dict[str, MonthDays], tracked: list[StoredLog]) -> set[str]:
    """Bring the months' logs up to tracking's state, in place; returns the months changed."""
    held: dict[str, list[str]] = defaultdict(list)  # log id -> months with an entry of it
    for key, month in months.items():
        for log_id in month.logs:
            held[log_id].append(key)
    changed: set[str] = set()
    for stored in tracked:
        log_id = stored.id
        # Built unvalidated: the contract model has checked every field already.
        entry = LogEntry.model_construct(
            date=stored.date,
            goal_id=stored.goal_id,
            minutes=stored.minutes,
            version=stored.version,
            deleted=stored.deleted,
        )
        key = month_of(entry.date)
        if key not in months:
            months[key] = empty_month(user_id, key)
        if place(months, log_id, entry)[0]:
            changed.add(key)
        for other in held.pop(log_id, []):  # the months it was on before: it left them
            if other != key and leave(months[other], log_id, entry.version):
                changed.add(other)
    for log_id, keys in held.items():  # gone from tracking: deleted there
        for key in keys:
            if leave(months[key], log_id, None):
                changed.add(key)
    return changed


def leave(month: MonthDays, log_id: str, version: int | None) -> bool:
    """Mark the log gone from the month (as of ``version``) unless it is, or is newer there."""
    held = month.logs[log_id]
    if held.deleted or (version is not None and held.version >= version):
        return False
    month.logs[log_id] = held.model_copy(
        update={"deleted": True, "version": held.version if version is None else version}
    )
    return True


def recount_months(months: dict[str, MonthDays], excluded_goals: set[str]) -> set[str]:
    """Recount every day of every month; returns the months whose days changed."""
    changed: set[str] = set()
    for key, month in months.items():
        days = {entry.date for entry in month.logs.values()} | set(month.days)
        if recount_days(month, days, excluded_goals):
            changed.add(key)
    return changed


def merge_goals(ours: dict[str, GoalState], tracked: list[StoredGoal]) -> dict[str, GoalState]:
    goals = dict(ours)
    seen: set[str] = set()
    for stored in tracked:
        seen.add(stored.id)
        current = ours.get(stored.id)
        if current is not None and current.version >= stored.version:
            continue
        goals[stored.id] = GoalState(
            title=stored.title,
            is_active=stored.is_active,
            activated_at=stored.activated_at,
            version=stored.version,
            deleted=stored.deleted,
        )
    for goal_id, current in ours.items():
        if goal_id not in seen and not current.deleted:
            goals[goal_id] = current.model_copy(update={"deleted": True})
    return goals


def merge_targets(
    user_id: str, ours: dict[str, TargetFact], tracked: list[StoredTarget]
) -> tuple[list[TargetFact], list[TargetFact]]:
    """(newer targets to write, targets tracking no longer has: to mark deleted)."""
    newer: list[TargetFact] = []
    seen: set[str] = set()
    for stored in tracked:
        seen.add(stored.id)
        current = ours.get(stored.id)
        if current is not None and current.version >= stored.version:
            continue
        newer.append(
            TargetFact(
                id=stored.id,
                user_id=user_id,
                goal_id=stored.goal_id,
                week_start=stored.week_start,
                target_minutes=stored.target_minutes,
                version=stored.version,
                deleted=stored.deleted,
            )
        )
    gone = [t for tid, t in ours.items() if tid not in seen and not t.deleted]
    return newer, gone


def merge_breaks(
    ours: dict[str, rules.BreakFact], tracked: list[StoredBreak]
) -> dict[str, rules.BreakFact]:
    """Our breaks brought up to tracking's (a newer one of ours wins); one tracking no
    longer has was deleted there."""
    breaks = {bid: fact.model_copy(update={"deleted": True}) for bid, fact in ours.items()}
    for stored in tracked:
        current = ours.get(stored.id)
        if current is not None and current.version >= stored.version:
            breaks[stored.id] = current
            continue
        breaks[stored.id] = rules.BreakFact(
            goal_id=stored.goal_id,
            start=date.fromisoformat(stored.start_date),
            end=date.fromisoformat(stored.end_date),
            version=stored.version,
            deleted=stored.deleted,
        )
    return breaks


class Rebuilder:
    def __init__(
        self,
        repo: ProjectionRepository,
        source: TrackingSource,
        concurrency: int = 4,
        clock: Clock | None = None,
    ) -> None:
        self.repo = repo
        self.source = source
        self.concurrency = concurrency
        self.clock = clock or Clock()

    async def rebuild_user(self, user_id: str) -> int:
        """Rebuild one user; returns how many of tracking's logs were read."""
        logs_read: int | None = None

        async def attempt() -> bool:
            nonlocal logs_read
            logs_read = await self._attempt(user_id)
            return logs_read is not None  # None: events for this user landed meanwhile

        await retry_on_conflict(attempt, f"user {user_id} kept changing during the rebuild")
        assert logs_read is not None
        return logs_read

    async def _attempt(self, user_id: str) -> int | None:
        user = await self.repo.get_user(user_id)
        if user is not None and user.deleted:
            # Deleted meanwhile, perhaps after an earlier attempt wrote: leave nothing.
            await self.repo.wipe_user_data(user_id)
            return 0
        months, our_targets = await asyncio.gather(
            self.repo.months_of_user(user_id), self.repo.targets_of_user(user_id)
        )
        logs, goal_docs, target_docs, break_docs = await self.source.of_user(user_id)
        changed = merge_logs(user_id, months, logs)
        newer, gone = merge_targets(user_id, {t.id: t for t in our_targets}, target_docs)
        await self.repo.write_targets(newer)
        await self.repo.mark_targets_deleted(gone)
        base = user or UserProjection(id=user_id)
        goals = merge_goals(base.goals, goal_docs)
        changed |= recount_months(months, {gid for gid, goal in goals.items() if goal.deleted})
        if not await self.repo.put_months(months[key] for key in sorted(changed)):
            return None  # the consumer changed a month meanwhile: start over
        days = {d: total for month in months.values() for d, total in month.days.items()}
        recent_from, recent_days = recent_window(days, None, self.clock.now().date())
        # The settings history is kept from the events, as the timezone always was: tracking
        # holds only users' current day settings, auth's events the history.
        base = base.model_copy(
            update={"goals": goals, "breaks": merge_breaks(base.breaks, break_docs)}
        )
        new = base.model_copy(
            update={
                "active_goal": pick_active_goal(goals),
                "folds": folds_from(base, days, date.min, recent_from, {}),
                "folds_at": recent_from,
                "month_totals": month_totals({}, months.values()),
                "recent_from": recent_from,
                "recent_days": recent_days,
            }
        )
        if not await self.repo.commit_user(new, base.version):
            return None
        return len(logs)

    async def rebuild(
        self, user_ids: list[str], on_user_done: Callable[[], None] | None = None
    ) -> RebuildReport:
        """Rebuild these users, ``concurrency`` at a time; ``on_user_done`` is called as each
        one is (a progress bar)."""
        report = RebuildReport()
        started = time.perf_counter()
        await self._rebuild_some(user_ids, report, on_user_done)
        report.seconds = time.perf_counter() - started
        log.info("rebuild_done", **report.as_dict())
        return report

    async def rebuild_all(
        self,
        after: str | None = None,
        on_user_done: Callable[[], None] | None = None,
        include: Callable[[str], bool] | None = None,
    ) -> RebuildReport:
        """Rebuild every user tracking or analytics knows (those after ``after``: resume a
        stopped run with the ``after`` of its last ``rebuild_progress`` line), or of them
        those ``include`` accepts (a partition's users: the repair of its trimmed events)."""
        report = RebuildReport()
        started = time.perf_counter()
        async for page in self.user_id_pages(after):
            chosen = page if include is None else [u for u in page if include(u)]
            await self._rebuild_some(chosen, report, on_user_done)
            log.info("rebuild_progress", users=report.users, logs=report.logs, after=page[-1])
        report.seconds = time.perf_counter() - started
        log.info("rebuild_done", **report.as_dict())
        return report

    async def _rebuild_some(
        self,
        user_ids: list[str],
        report: RebuildReport,
        on_user_done: Callable[[], None] | None,
    ) -> None:
        """At most ``concurrency`` users at a time, from at most that many tasks."""
        pending = iter(user_ids)

        async def worker() -> None:
            for user_id in pending:
                logs = await self.rebuild_user(user_id)
                report.logs += logs
                report.users += 1
                if on_user_done is not None:
                    on_user_done()

        await asyncio.gather(*(worker() for _ in range(max(self.concurrency, 1))))

    async def user_id_pages(
        self, after: str | None = None, page: int = USER_PAGE
    ) -> AsyncIterator[list[str]]:
        """Every user with goals in tracking or a live projection here, in id order, a
        page at a time. Both lists are read after the same id; the page ends at the
        smaller last id of those that may go on, so no id is skipped or repeated."""
        while True:
            (tracked, tracked_end), (ours, ours_end) = await asyncio.gather(
                self.source.user_ids_after(after, page),
                self.repo.live_user_ids_after(after, page),
            )
            bounds = [end for end in (tracked_end, ours_end) if end is not None]
            upto = min(bounds) if bounds else None
            ids = sorted({u for u in (*tracked, *ours) if upto is None or u <= upto})
            if ids:
                yield ids
            if upto is None:
                return
            after = upto
