"""What an export holds: every record of the user with its ids, their day settings and
their history, and the history computed from them (marked derived; an import ignores it)."""

import csv
import io
import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from momentum_libs import streak_rules
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
    "settings": ["timezone", "day_start", "rest_weekdays", "daily_goal_minutes"],
    "settings_history": [
        "effective_date",
        "timezone",
        "day_start",
        "rest_weekdays",
        "daily_goal_minutes",
    ],
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


def settings_history(days: UserDays | None) -> list[streak_rules.DaySettings]:
    """The user's day settings history; for a document from before it was kept, its one
    current state, for every day."""
    if days is None or days.history:
        return [] if days is None else days.history
    return [
        streak_rules.DaySettings(
            effective=date.min,
            at=datetime.fromtimestamp(days.event_ms / 1000, UTC),
            timezone=days.timezone,
            day_start=days.day_start,
            rest_weekdays=list(days.rest_weekdays),
            daily_goal_minutes=days.daily_goal_minutes,
        )
    ]


def _streak_runs(
    records: UserRecords, totals: dict[str, int], now: datetime
) -> list[dict[str, Any]]:
    """The streak runs of all goals together up to the user's today, oldest first, by
    analytics' own rules (momentum_libs.streak_rules: daily goal, rest days, breaks,
    freezes), so they are the runs GET /analytics/streaks answers."""
    history = settings_history(records.days)
    breaks = {
        str(b.id): streak_rules.BreakFact(
            goal_id=b.goal_id,
            start=date.fromisoformat(b.start_date),
            end=date.fromisoformat(b.end_date),
            version=b.version,
        )
        for b in records.breaks
    }
    calendar = streak_rules.Calendar.of(history, breaks, streak_rules.ALL_GOALS)
    minutes = {date.fromisoformat(d): m for d, m in totals.items()}
    today = streak_rules.user_today(history, now).date
    return [
        {"start": r.start.isoformat(), "end": r.end.isoformat(), "days": r.length}
        for r in streak_rules.every_run(calendar, minutes, today)
    ]


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


def _history(days: UserDays | None) -> list[dict[str, Any]]:
    return [
        {
            "effective_date": s.effective.isoformat(),
            "timezone": s.timezone,
            "day_start": s.day_start,
            "rest_weekdays": s.rest_weekdays,
            "daily_goal_minutes": s.daily_goal_minutes,
        }
        for s in settings_history(days)
    ]


def export_document(user_id: str, records: UserRecords, now: datetime) -> dict[str, Any]:
    """The export; ``now``: the instant the user's today (which ends the streak runs) is
    computed at, the service's clock."""
    totals = _day_totals(records.logs)
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utcnow().isoformat().replace("+00:00", "Z"),
        "user": {
            "id": user_id,
            "settings": None if records.days is None else records.days.day_state(),
            "settings_history": _history(records.days),
        },
        "goals": [GoalRead.from_document(g).model_dump(mode="json") for g in records.goals],
        "weekly_targets": [
            TargetRead.from_document(t).model_dump(mode="json") for t in records.targets
        ],
        "daily_logs": [LogRead.from_document(lg).model_dump(mode="json") for lg in records.logs],
        "breaks": [BreakRead.from_document(b).model_dump(mode="json") for b in records.breaks],
        "derived": {
            "note": "computed from the records above when exported; an import ignores it",
            "day_totals": [{"date": d, "minutes": m} for d, m in totals.items()],
            "streak_runs": _streak_runs(records, totals, now),
            "weekly_results": _weekly_results(records.targets, records.logs),
        },
    }


def as_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def _cell(value: Any) -> Any:
    """A CSV cell: a list (rest weekdays) as its items joined by spaces."""
    return " ".join(value) if isinstance(value, list) else value


def _csv(name: str, rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_COLUMNS[name], extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def as_zip(document: dict[str, Any]) -> bytes:
    """One CSV per resource type; derived figures under ``derived/``."""
    user = document["user"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in RECORD_TYPES:
            archive.writestr(f"{name}.csv", _csv(name, document[name]))
        settings = [user["settings"]] if user["settings"] else []
        archive.writestr("settings.csv", _csv("settings", settings))
        archive.writestr("settings_history.csv", _csv("settings_history", user["settings_history"]))
        for name in DERIVED_TYPES:
            archive.writestr(f"derived/{name}.csv", _csv(name, document["derived"][name]))
    return buffer.getvalue()
