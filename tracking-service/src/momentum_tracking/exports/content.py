"""What an export holds: every record of the user with its ids, their day settings, and
the history computed from the records (marked derived; an import ignores it)."""

import csv
import io
import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from momentum_libs.clock import utcnow

from momentum_tracking.breaks.models import Break
from momentum_tracking.breaks.schemas import BreakRead
from momentum_tracking.days.models import UserDays
from momentum_tracking.goals.models import Goal
from momentum_tracking.goals.schemas import GoalRead
from momentum_tracking.logs.models import DailyLog
from momentum_tracking.logs.schemas import LogRead
from momentum_tracking.targets.models import WeeklyTarget
from momentum_tracking.targets.schemas import TargetRead

EXPORT_FORMAT = "momentum-export"
EXPORT_VERSION = 1
RECORD_TYPES = ("goals", "weekly_targets", "daily_logs", "breaks")
DERIVED_TYPES = ("day_totals", "streak_runs", "weekly_results")
# The columns of each CSV file, so a file with no rows still has its header.
_COLUMNS: dict[str, list[str]] = {
    "goals": list(GoalRead.model_fields),
    "weekly_targets": list(TargetRead.model_fields),
    "daily_logs": list(LogRead.model_fields),
    "breaks": list(BreakRead.model_fields),
    "settings": ["timezone", "day_start"],
    "day_totals": ["date", "minutes"],
    "streak_runs": ["start", "end", "days"],
    "weekly_results": ["goal_id", "week_start", "target_minutes", "logged_minutes", "met"],
}


@dataclass(frozen=True)
class UserRecords:
    goals: list[Goal]
    targets: list[WeeklyTarget]
    logs: list[DailyLog]
    breaks: list[Break]
    days: UserDays | None


def _day_totals(logs: list[DailyLog]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for log in logs:
        totals[log.date] += log.minutes
    return dict(sorted(totals.items()))


def _streak_runs(totals: dict[str, int]) -> list[dict[str, Any]]:
    """Runs of consecutive active days (at least one minute), oldest first."""
    runs: list[dict[str, Any]] = []
    for day in sorted(date.fromisoformat(d) for d, m in totals.items() if m > 0):
        if runs and date.fromisoformat(runs[-1]["end"]) == day - timedelta(days=1):
            runs[-1]["end"] = day.isoformat()
            runs[-1]["days"] += 1
        else:
            runs.append({"start": day.isoformat(), "end": day.isoformat(), "days": 1})
    return runs


def _weekly_results(targets: list[WeeklyTarget], logs: list[DailyLog]) -> list[dict[str, Any]]:
    logged: dict[tuple[str, str], int] = defaultdict(int)
    for log in logs:
        day = date.fromisoformat(log.date)
        monday = day - timedelta(days=day.weekday())
        logged[(log.goal_id, monday.isoformat())] += log.minutes
    return [
        {
            "goal_id": t.goal_id,
            "week_start": t.week_start,
            "target_minutes": t.target_minutes,
            "logged_minutes": logged[(t.goal_id, t.week_start)],
            "met": logged[(t.goal_id, t.week_start)] >= t.target_minutes,
        }
        for t in sorted(targets, key=lambda t: (t.week_start, t.goal_id))
    ]


def export_document(user_id: str, records: UserRecords) -> dict[str, Any]:
    totals = _day_totals(records.logs)
    settings = None
    if records.days is not None:
        settings = {"timezone": records.days.timezone, "day_start": records.days.day_start}
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utcnow().isoformat().replace("+00:00", "Z"),
        "user": {"id": user_id, "settings": settings},
        "goals": [GoalRead.from_document(g).model_dump(mode="json") for g in records.goals],
        "weekly_targets": [
            TargetRead.from_document(t).model_dump(mode="json") for t in records.targets
        ],
        "daily_logs": [LogRead.from_document(lg).model_dump(mode="json") for lg in records.logs],
        "breaks": [BreakRead.from_document(b).model_dump(mode="json") for b in records.breaks],
        "derived": {
            "note": "computed from the records above when exported; an import ignores it",
            "day_totals": [{"date": d, "minutes": m} for d, m in totals.items()],
            "streak_runs": _streak_runs(totals),
            "weekly_results": _weekly_results(records.targets, records.logs),
        },
    }


def as_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def _csv(name: str, rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_COLUMNS[name], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def as_zip(document: dict[str, Any]) -> bytes:
    """One CSV per resource type; derived figures under ``derived/``."""
    settings = document["user"]["settings"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in RECORD_TYPES:
            archive.writestr(f"{name}.csv", _csv(name, document[name]))
        archive.writestr("settings.csv", _csv("settings", [settings] if settings else []))
        for name in DERIVED_TYPES:
            archive.writestr(f"derived/{name}.csv", _csv(name, document["derived"][name]))
    return buffer.getvalue()
