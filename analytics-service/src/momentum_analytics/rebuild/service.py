"""Recompute a user's projections from tracking's data while the service keeps serving.

One optimistic attempt per user, retried on conflict with the live consumer:

1. read the user's projection (its version guards the final commit), then our facts,
   then tracking's documents (in that order: a fact we hold that tracking no longer has
   was deleted there, since ids are never reused);
2. bring the facts up to tracking's state with version-guarded bulk writes (a newer
   fact written by the consumer meanwhile wins; losing any write retries the attempt);
3. compute every day, the streak and the totals from the merged facts in memory,
   replace the user's year documents, commit the user's projection.
"""

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from momentum_libs.timestamps import as_utc

from momentum_analytics.projections import streaks
from momentum_analytics.projections.models import (
    DayTotal,
    GoalState,
    LogFact,
    TargetFact,
    UserProjection,
    YearDays,
    year_doc_id,
)
from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.projections.service import (
    MAX_ATTEMPTS,
    ConflictError,
    active_days,
    pick_active_goal,
    year_total,
)
from momentum_analytics.rebuild.source import Doc, TrackingSource

log = structlog.get_logger(__name__)


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


def _aware(value: Any) -> datetime | None:
    return as_utc(value) if isinstance(value, datetime) else None


def merge_logs(
    user_id: str, ours: dict[str, LogFact], tracked: list[Doc]
) -> tuple[dict[str, LogFact], list[tuple[LogFact, int | None]]]:
    """The facts after the rebuild, and the writes that make them so."""
    merged = dict(ours)
    writes: list[tuple[LogFact, int | None]] = []
    seen: set[str] = set()
    for doc in tracked:
        log_id = str(doc["_id"])
        seen.add(log_id)
        current = ours.get(log_id)
        version = int(doc.get("version", 1))
        if current is not None and current.version >= version:
            continue
        fact = LogFact(
            id=log_id,
            user_id=user_id,
            goal_id=str(doc["goal_id"]),
            date=str(doc["date"]),
            minutes=int(doc["minutes"]),
            version=version,
            deleted=bool(doc.get("deleted", False)),
            dates=sorted({*(current.dates if current else []), str(doc["date"])}),
        )
        merged[log_id] = fact
        writes.append((fact, None if current is None else current.version))
    for log_id, current in ours.items():
        if log_id not in seen and not current.deleted:
            gone = current.model_copy(update={"deleted": True})
            merged[log_id] = gone
            writes.append((gone, current.version))
    return merged, writes


def merge_goals(ours: dict[str, GoalState], tracked: list[Doc]) -> dict[str, GoalState]:
    goals = dict(ours)
    seen: set[str] = set()
    for doc in tracked:
        goal_id = str(doc["_id"])
        seen.add(goal_id)
        version = int(doc.get("version", 1))
        current = ours.get(goal_id)
        if current is not None and current.version >= version:
            continue
        goals[goal_id] = GoalState(
            title=str(doc.get("title", "")),
            is_active=bool(doc.get("is_active", False)),
            activated_at=_aware(doc.get("activated_at")),
            version=version,
            deleted=bool(doc.get("deleted", False)),
        )
    for goal_id, current in ours.items():
        if goal_id not in seen and not current.deleted:
            goals[goal_id] = current.model_copy(update={"deleted": True})
    return goals


def merge_targets(
    user_id: str, ours: dict[str, TargetFact], tracked: list[Doc]
) -> tuple[list[TargetFact], list[TargetFact]]:
    """(newer targets to write, targets tracking no longer has: to mark deleted)."""
    newer: list[TargetFact] = []
    seen: set[str] = set()
    for doc in tracked:
        target_id = str(doc["_id"])
        seen.add(target_id)
        version = int(doc.get("version", 1))
        current = ours.get(target_id)
        if current is not None and current.version >= version:
            continue
        newer.append(
            TargetFact(
                id=target_id,
                user_id=user_id,
                goal_id=str(doc["goal_id"]),
                week_start=str(doc["week_start"]),
                target_minutes=int(doc["target_minutes"]),
                version=version,
                deleted=bool(doc.get("deleted", False)),
            )
        )
    gone = [t for tid, t in ours.items() if tid not in seen and not t.deleted]
    return newer, gone


def years_from_facts(
    user_id: str, facts: dict[str, LogFact], excluded_goals: set[str]
) -> dict[int, YearDays]:
    years: dict[int, YearDays] = {}
    for fact in facts.values():
        if fact.deleted or fact.goal_id in excluded_goals:
            continue
        year = int(fact.date[:4])
        doc = years.get(year)
        if doc is None:
            doc = years[year] = YearDays(id=year_doc_id(user_id, year), user_id=user_id, year=year)
        day = doc.days.get(fact.date)
        if day is None:
            day = doc.days[fact.date] = DayTotal()
        day.t += fact.minutes
        day.g[fact.goal_id] = day.g.get(fact.goal_id, 0) + fact.minutes
    return years


class Rebuilder:
    def __init__(
        self, repo: ProjectionRepository, source: TrackingSource, concurrency: int = 4
    ) -> None:
        self.repo = repo
        self.source = source
        self.concurrency = concurrency

    async def rebuild_user(self, user_id: str) -> int:
        """Rebuild one user; returns how many of tracking's logs were read."""
        for attempt in range(MAX_ATTEMPTS):
            done = await self._attempt(user_id)
            if done is not None:
                return done
            # Events for this user landed meanwhile: let the consumer's burst pass first.
            await asyncio.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.5)))  # noqa: S311
        raise ConflictError(f"user {user_id} kept changing during the rebuild")

    async def _attempt(self, user_id: str) -> int | None:
        user = await self.repo.get_user(user_id)
        if user is not None and user.deleted:
            return 0
        ours, our_targets = await asyncio.gather(
            self.repo.facts_of_user(user_id), self.repo.targets_of_user(user_id)
        )
        logs, goal_docs, target_docs = await self.source.of_user(user_id)
        merged, writes = merge_logs(user_id, {f.id: f for f in ours}, logs)
        if await self.repo.write_facts(writes):
            return None  # the consumer changed a fact meanwhile: start over
        newer, gone = merge_targets(user_id, {t.id: t for t in our_targets}, target_docs)
        await self.repo.write_targets(newer)
        await self.repo.mark_targets_deleted(gone)
        base = user or UserProjection(id=user_id)
        goals = merge_goals(base.goals, goal_docs)
        excluded = {gid for gid, goal in goals.items() if goal.deleted}
        years = years_from_facts(user_id, merged, excluded)
        await self.repo.replace_years(user_id, years)
        new = base.model_copy(
            update={
                "goals": goals,
                "active_goal": pick_active_goal(goals),
                "streak": streaks.from_active_days(active_days(years.values())),
                "year_totals": {str(y): year_total(doc) for y, doc in years.items()},
            }
        )
        if not await self.repo.commit_user(new, base.version):
            return None
        return len(logs)

    async def rebuild(self, user_ids: list[str]) -> RebuildReport:
        report = RebuildReport()
        started = time.perf_counter()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(user_id: str) -> None:
            async with gate:
                logs = await self.rebuild_user(user_id)
            report.logs += logs
            report.users += 1

        await asyncio.gather(*(one(uid) for uid in user_ids))
        report.seconds = time.perf_counter() - started
        log.info("rebuild_done", **report.as_dict())
        return report

    async def all_user_ids(self) -> list[str]:
        tracked = await self.source.user_ids()
        ours = await self.repo.live_user_ids()
        return sorted(tracked | ours)
