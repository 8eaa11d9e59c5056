"""Import: merge a file's goals, weekly targets and daily logs into the user's.

Records are matched, not copied by id (ids belong to the account that made them): a goal
by its title, a weekly target by its goal and week, a daily log by goal, date, minutes
and note. A match that is the same is skipped as a duplicate, a goal or target that
differs is updated, and only the rest is created; so the same file imported twice
changes nothing the second time. Every write goes through the services, with their
rules and events, so analytics counts what an import creates.

Two things go further than the POSTs, bounded to the days before the account existed
(its own days since are its history, which no file rewrites): a break of those days is
created (``BreakService.restore``; a break of later days is a row's problem), and the
file's settings go to auth as a ``user.settings_imported`` event (auth owns them): it
applies the current ones from the user's today as ``PATCH /users/me`` would, and the
history of the days before the account as their settings, so imported past days keep the
rest days and daily goal they had.
"""

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

from bson import ObjectId
from momentum_libs.clock import utcnow
from momentum_libs.events import (
    MAX_RESTORED_SETTINGS,
    DayState,
    Envelope,
    EventType,
    PastDaySettings,
    SettingsImportedPayload,
)
from momentum_libs.outbox import OutboxRepository
from momentum_libs.problems import ProblemError
from pydantic import BaseModel, ValidationError

from momentum_tracking.breaks.models import Break
from momentum_tracking.breaks.schemas import BreakCreate
from momentum_tracking.breaks.service import BreakService
from momentum_tracking.days.repository import DaysRepository
from momentum_tracking.goals.models import Goal
from momentum_tracking.goals.schemas import GoalCreate, GoalUpdate
from momentum_tracking.goals.service import GoalService
from momentum_tracking.imports.models import SettingsImport
from momentum_tracking.imports.parse import ImportData, Row
from momentum_tracking.logs.models import DailyLog
from momentum_tracking.logs.schemas import LogCreate
from momentum_tracking.logs.service import LogService
from momentum_tracking.owned import OwnedRepository
from momentum_tracking.targets.models import WeeklyTarget
from momentum_tracking.targets.schemas import TargetCreate, TargetUpdate
from momentum_tracking.targets.service import TargetService

Kind = Literal["goals", "weekly_targets", "daily_logs", "breaks"]
KINDS: tuple[Kind, ...] = ("goals", "weekly_targets", "daily_logs", "breaks")
SettingsStatus = Literal["applying", "not_applied", "none"]
"""What became of the file's settings: sent to the account (auth applies them within
moments), not applied (a dry run, or they had a problem), or the file has none."""
# Validation needs a goal id; the real one is only known once the goal is matched.
_ANY_GOAL = "000000000000000000000000"
M = TypeVar("M", bound=BaseModel)
LOG_BATCH = 500
"""Logs written in one round trip: each batch is one insert of that many documents."""


@dataclass
class Report:
    format: str
    dry_run: bool
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[dict[str, str]] = field(default_factory=list)
    settings: dict[str, Any] | None = None
    settings_status: SettingsStatus = "none"

    def problem(self, row: Row, detail: str) -> None:
        self.problems.append({"row": row.where, "detail": detail})

    def as_dict(self) -> dict[str, Any]:
        def counts(c: Counter[str]) -> dict[str, int]:
            return {k: c[k] for k in KINDS}

        return {
            "format": self.format,
            "dry_run": self.dry_run,
            "created": counts(self.created),
            "updated": counts(self.updated),
            "skipped": counts(self.skipped),
            "problems": self.problems,
            "settings": self.settings,
            "settings_status": self.settings_status,
        }


def _validated(model: type[M], row: Row, report: Report, **extra: Any) -> M | None:
    names = model.model_fields.keys()
    values = {k: v for k, v in row.fields.items() if k in names} | extra
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        report.problem(row, error_detail(exc))
        return None


def error_detail(exc: ValidationError) -> str:
    """A validation error's first problem, where it is and what: a row's ``detail``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "row"
    return f"{where}: {first['msg']}"


def _past_settings(entries: list[Any], report: Report) -> list[PastDaySettings]:
    """The file's settings history, each entry checked on its own (a bad one is left out,
    as its row's problem); at most MAX_RESTORED_SETTINGS of them."""
    history: list[PastDaySettings] = []
    for i, entry in enumerate(entries):
        row = f"user.settings_history[{i}]"
        if i >= MAX_RESTORED_SETTINGS:
            detail = f"An import restores at most {MAX_RESTORED_SETTINGS} settings entries."
            report.problems.append({"row": row, "detail": detail})
            break
        try:
            history.append(PastDaySettings.model_validate(entry))
        except ValidationError as exc:
            report.problems.append({"row": row, "detail": error_detail(exc)})
    return history


class ImportService:
    def __init__(
        self,
        goals: GoalService,
        targets: TargetService,
        logs: LogService,
        goal_repository: OwnedRepository[Goal],
        target_repository: OwnedRepository[WeeklyTarget],
        log_repository: OwnedRepository[DailyLog],
        breaks: BreakService,
        break_repository: OwnedRepository[Break],
        settings_imports: OutboxRepository[SettingsImport],
        days: DaysRepository,
    ) -> None:
        self._goals = goals
        self._targets = targets
        self._logs = logs
        self._goal_repo = goal_repository
        self._target_repo = target_repository
        self._log_repo = log_repository
        self._breaks = breaks
        self._break_repo = break_repository
        self._settings_imports = settings_imports
        self._days = days

    async def run(self, user_id: str, data: ImportData, dry_run: bool) -> Report:
        report = Report(data.format, dry_run, settings=data.settings)
        goal_ids = await self._merge_goals(user_id, data.goals, report)
        await self._merge_targets(user_id, data.targets, goal_ids, report)
        await self._merge_logs(user_id, data.logs, goal_ids, report)
        await self._merge_breaks(user_id, data.breaks, goal_ids, report)
        await self._send_settings(user_id, data, report)
        return report

    async def _send_settings(self, user_id: str, data: ImportData, report: Report) -> None:
        """The file's settings to auth, as one outbox event (published even if this
        process dies after the import); their problem, if any, is the report's."""
        if data.settings is None:
            return
        # A setting the file lacks (an export older than it) stays as the account has it.
        known = await self._days.get(user_id)
        given = {**({} if known is None else known.day_state()), **data.settings}
        try:
            current = DayState.model_validate(given)
        except ValidationError as exc:
            report.problems.append({"row": "user.settings", "detail": error_detail(exc)})
            report.settings_status = "not_applied"
            return
        payload = SettingsImportedPayload(
            settings=current, history=_past_settings(data.settings_history, report)
        )
        report.settings = payload.settings.model_dump(mode="json")
        if report.dry_run:
            report.settings_status = "not_applied"
            return
        record = SettingsImport(id=ObjectId(), user_id=user_id, created_at=utcnow(), deleted=True)
        event = Envelope.create(EventType.USER_SETTINGS_IMPORTED, user_id, payload)
        await self._settings_imports.insert(record, event)
        report.settings_status = "applying"

    async def _merge_breaks(
        self, user_id: str, rows: list[Row], goal_ids: dict[str, str], report: Report
    ) -> None:
        """Breaks of the days before the account existed (``BreakService.restore``)."""
        existing = {
            (b.goal_id, b.start_date, b.end_date, b.kind, b.note)
            for b in await self._break_repo.all_of_user(user_id)
        }
        for row in rows:
            every_goal = row.fields.get("goal_id") is None
            data = _validated(BreakCreate, row, report, goal_id=None if every_goal else _ANY_GOAL)
            goal_id = None if every_goal else goal_ids.get(row.goal_key)
            if data is None:
                continue
            if not every_goal and goal_id is None:
                report.problem(row, "Its goal is not in the file (or had a problem).")
                continue
            key = (
                goal_id,
                data.start_date.isoformat(),
                data.end_date.isoformat(),
                data.kind,
                data.note,
            )
            if key in existing:
                report.skipped["breaks"] += 1
                continue
            body = data.model_copy(update={"goal_id": goal_id})
            try:  # checked in a dry run too: it answers the report the import would
                await self._breaks.check_restorable(user_id, body)
            except ProblemError as exc:
                report.problem(row, exc.detail)
                continue
            if (
                await self._write(report, row, partial(self._breaks.restore, user_id, body))
                is not False
            ):
                existing.add(key)
                report.created["breaks"] += 1

    async def _write(self, report: Report, row: Row, write: Callable[[], Awaitable[Any]]) -> Any:
        """Run one write unless this is a dry run; a rule it breaks is that row's problem."""
        if report.dry_run:
            return None
        try:
            return await write()
        except ProblemError as exc:
            report.problem(row, exc.detail)
            return False

    async def _merge_goals(self, user_id: str, rows: list[Row], report: Report) -> dict[str, str]:
        """Create or update the file's goals; the user's goal id of each file goal key."""
        by_title = {g.title: g for g in await self._goal_repo.all_of_user(user_id)}
        ids: dict[str, str] = {}
        activate: str | None = None
        for row in rows:
            data = _validated(GoalCreate, row, report)
            if data is None:
                continue
            goal = by_title.get(data.title)
            if goal is None:
                made = await self._write(report, row, partial(self._goals.create, user_id, data))
                if made is False:
                    continue
                report.created["goals"] += 1
                goal_id = str(made.id) if made is not None else f"new:{data.title}"
                if made is not None:
                    by_title[data.title] = made  # a second goal of that title in the file
            else:
                goal_id = str(goal.id)
                if self._same_goal(goal, data):
                    report.skipped["goals"] += 1
                else:
                    update = GoalUpdate(description=data.description, target_date=data.target_date)
                    await self._write(
                        report, row, partial(self._goals.update, user_id, goal_id, update)
                    )
                    report.updated["goals"] += 1
            ids[row.goal_key] = goal_id
            if row.fields.get("is_active") is True:
                activate = goal_id
        if activate is not None and not report.dry_run:
            await self._goals.activate(user_id, activate)
        return ids

    @staticmethod
    def _same_goal(goal: Goal, data: GoalCreate) -> bool:
        target_date = data.target_date.isoformat() if data.target_date else None
        return goal.description == data.description and goal.target_date == target_date

    async def _merge_targets(
        self, user_id: str, rows: list[Row], goal_ids: dict[str, str], report: Report
    ) -> None:
        existing = {
            (t.goal_id, t.week_start): t for t in await self._target_repo.all_of_user(user_id)
        }
        for row in rows:
            data = _validated(TargetCreate, row, report, goal_id=_ANY_GOAL)
            goal_id = goal_ids.get(row.goal_key)
            if data is None:
                continue
            if goal_id is None:
                report.problem(row, "Its goal is not in the file (or had a problem).")
                continue
            found = existing.get((goal_id, data.week_start.isoformat()))
            if found is None:
                body = data.model_copy(update={"goal_id": goal_id})
                if (
                    await self._write(report, row, partial(self._targets.create, user_id, body))
                    is not False
                ):
                    report.created["weekly_targets"] += 1
            elif (found.target_minutes, found.note) == (data.target_minutes, data.note):
                report.skipped["weekly_targets"] += 1
            else:
                update = TargetUpdate(target_minutes=data.target_minutes, note=data.note)
                target_id = str(found.id)
                await self._write(
                    report, row, partial(self._targets.update, user_id, target_id, update)
                )
                report.updated["weekly_targets"] += 1

    async def _merge_logs(
        self, user_id: str, rows: list[Row], goal_ids: dict[str, str], report: Report
    ) -> None:
        # A multiset: several equal logs on one date are allowed, and each is matched once.
        existing = Counter(
            (lg.goal_id, lg.date, lg.minutes, lg.note)
            for lg in await self._log_repo.all_of_user(user_id)
        )
        new: list[tuple[Row, LogCreate]] = []
        for row in rows:
            data = _validated(LogCreate, row, report, goal_id=_ANY_GOAL)
            goal_id = goal_ids.get(row.goal_key)
            if data is None:
                continue
            if goal_id is None:
                report.problem(row, "Its goal is not in the file (or had a problem).")
                continue
            key = (goal_id, data.date.isoformat(), data.minutes, data.note)
            if existing[key] > 0:
                existing[key] -= 1
                report.skipped["daily_logs"] += 1
                continue
            new.append((row, data.model_copy(update={"goal_id": goal_id})))
        if report.dry_run:
            report.created["daily_logs"] += len(new)
            return
        # In batches, not one by one: a file of the largest size holds ~10k logs, which
        # one at a time took minutes, past the gateway's read timeout.
        for start in range(0, len(new), LOG_BATCH):
            batch = new[start : start + LOG_BATCH]
            results = await self._logs.create_many(user_id, [body for _, body in batch])
            for (row, _), result in zip(batch, results, strict=True):
                if isinstance(result, ProblemError):
                    report.problem(row, result.detail)
                else:
                    report.created["daily_logs"] += 1
