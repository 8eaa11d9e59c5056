"""The files an import reads, each turned into the same rows: goals, weekly targets and
daily logs, with where in the file each came from (for its problem, if it has one).

- A Momentum JSON export (``exports/content.py``): its records, breaks included, and its
  settings with their history; ``derived`` is ignored.
- A CSV of ``date,minutes,goal,note``: one log a line, goals by title.
- Loop Habit Tracker's CSV export (a zip, ``HabitsCSVExporter`` of iSoron/uhabits):
  ``Habits.csv`` (``Position,Name,Type,Question,Description,FrequencyNumerator,
  FrequencyDenominator,Color,Unit,Target Type,Target Value,Archived?``) makes goals, the
  root ``Checkmarks.csv`` (``Date,<habit>,…,``, newest day first, a trailing comma) logs.
  A yes/no habit's cell is the entry's name: ``YES_MANUAL`` (checked by hand) is a log of
  ``minutes_per_check`` minutes, as Loop keeps no durations; ``YES_AUTO`` (a day Loop
  inferred from the habit's frequency), ``NO``, ``SKIP`` and ``UNKNOWN`` are none (Loop
  before 2.0 wrote the numbers: 2 by hand, 1 inferred, 0 no). A numerical habit's cell is
  its amount in thousandths (Loop stores 1.5 as 1500): with a unit of minutes or hours it
  is a log of that many minutes, with another unit a day of an amount above 0 counts as a
  check.
"""

import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from momentum_libs.problems import ProblemError, validation_problem

from momentum_tracking.exports.content import EXPORT_FORMAT

LOOP_CHECKED = frozenset({"YES_MANUAL", "2"})
"""A yes/no habit's day checked by hand: Loop 2's name of it, and older Loops' number."""
LOOP_THOUSANDTHS = 1000
"""Loop stores a numerical habit's amount in thousandths."""
LOOP_TIME_UNITS: dict[str, int] = {
    **dict.fromkeys(("min", "mins", "minute", "minutes"), 1),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 60),
}
"""A numerical habit's unit that is a duration: the minutes in one of it."""


@dataclass(frozen=True)
class Row:
    where: str  # "daily_logs[3]", "line 4", "Checkmarks.csv line 9"
    goal_key: str  # the goal's id in the file, or its title
    fields: dict[str, Any]


@dataclass
class ImportData:
    format: str
    goals: list[Row] = field(default_factory=list)
    targets: list[Row] = field(default_factory=list)
    logs: list[Row] = field(default_factory=list)
    breaks: list[Row] = field(default_factory=list)
    settings: dict[str, Any] | None = None
    settings_history: list[Any] = field(default_factory=list)


def _number(text: str | None) -> int | str | None:
    """A CSV cell as the integer it spells; else as it is, for validation to name."""
    stripped = (text or "").strip()
    return int(stripped) if stripped.isdigit() else stripped or None


def bad_file(detail: str) -> ProblemError:
    """A file that is not what its type says: a 422 shaped like every validation error."""
    return validation_problem(["body"], detail)


def _text(content: bytes, what: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_file(f"{what} is not UTF-8 text.") from exc


def momentum_json(content: bytes) -> ImportData:
    try:
        document = json.loads(_text(content, "The file"))
    except (ValueError, RecursionError) as exc:
        raise bad_file("The file is not valid JSON.") from exc
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise bad_file(f'A JSON import must be a Momentum export ("format": "{EXPORT_FORMAT}").')
    data = ImportData("momentum-json")
    user = document.get("user")
    if isinstance(user, dict) and isinstance(user.get("settings"), dict):
        data.settings = user["settings"]
        history = user.get("settings_history", [])
        data.settings_history = history if isinstance(history, list) else [history]
    for name, rows, key in (
        ("goals", data.goals, "id"),
        ("weekly_targets", data.targets, "goal_id"),
        ("daily_logs", data.logs, "goal_id"),
        ("breaks", data.breaks, "goal_id"),
    ):
        items = document.get(name, [])
        if not isinstance(items, list):
            raise bad_file(f'"{name}" must be a list.')
        for i, item in enumerate(items):
            where = f"{name}[{i}]"
            if not isinstance(item, dict):
                rows.append(Row(where, "", {}))
                continue
            rows.append(Row(where, str(item.get(key, "")), item))
    return data


def simple_csv(content: bytes) -> ImportData:
    reader = csv.DictReader(io.StringIO(_text(content, "The file")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if header[:3] != ["date", "minutes", "goal"]:
        raise bad_file("A CSV import needs the header date,minutes,goal,note (note optional).")
    reader.fieldnames = header
    data = ImportData("csv")
    titles: dict[str, None] = {}
    for line, record in enumerate(reader, start=2):
        title = (record.get("goal") or "").strip()
        titles.setdefault(title)
        data.logs.append(
            Row(
                f"line {line}",
                title,
                {
                    "date": record.get("date"),
                    "minutes": _number(record.get("minutes")),
                    "note": record.get("note") or None,
                },
            )
        )
    data.goals = [Row(f"goal {t!r}", t, {"title": t}) for t in titles]
    return data


def _member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> str:
    try:
        info = archive.getinfo(name)
    except KeyError as exc:
        raise bad_file(f"A Loop Habit Tracker export holds {name}; this zip has none.") from exc
    if info.file_size > max_bytes:  # what it says it unpacks to: no zip bomb gets read
        raise ProblemError(413, f"{name} unpacks to more than {max_bytes} bytes.")
    return _text(archive.read(info), name)


def loop_zip(content: bytes, max_bytes: int, minutes_per_check: int) -> ImportData:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as exc:
        raise bad_file("The file is not a zip archive.") from exc
    with archive:
        habits = list(csv.DictReader(io.StringIO(_member(archive, "Habits.csv", max_bytes))))
        checks = list(csv.reader(io.StringIO(_member(archive, "Checkmarks.csv", max_bytes))))
    data = ImportData("loop")
    minutes_of: dict[str, Callable[[str], int | None]] = {}
    for line, habit in enumerate(habits, start=2):
        name = (habit.get("Name") or "").strip()
        description = (habit.get("Description") or habit.get("Question") or "").strip()
        fields = {"title": name, "description": description or None}
        data.goals.append(Row(f"Habits.csv line {line}", name, fields))
        minutes_of[name] = _loop_minutes(habit, minutes_per_check)
    if not checks:
        return data
    names = [n.strip() for n in checks[0][1:]]
    for line, record in enumerate(checks[1:], start=2):
        for name, value in zip(names, record[1:], strict=False):
            minutes = minutes_of.get(name, partial(_checked, minutes_per_check))(value.strip())
            if minutes is not None:
                fields = {"date": record[0], "minutes": minutes, "note": None}
                data.logs.append(Row(f"Checkmarks.csv line {line}", name, fields))
    return data


def _checked(minutes_per_check: int, value: str) -> int | None:
    """A yes/no habit's cell: checked by hand, or not a log."""
    return minutes_per_check if value in LOOP_CHECKED else None


def _amount(value: str) -> float | None:
    """A numerical habit's cell as its amount (None: no number, an unknown or skipped day)."""
    try:
        return int(value) / LOOP_THOUSANDTHS
    except ValueError:
        return None


def _timed(unit_minutes: int, value: str) -> int | None:
    amount = _amount(value)
    minutes = None if amount is None else round(amount * unit_minutes)
    return minutes if minutes else None


def _counted(minutes_per_check: int, value: str) -> int | None:
    amount = _amount(value)
    return minutes_per_check if amount is not None and amount > 0 else None


def _loop_minutes(habit: dict[str, str], minutes_per_check: int) -> Callable[[str], int | None]:
    """How a habit's Checkmarks.csv cell becomes a log's minutes (None: no log)."""
    if (habit.get("Type") or "YES_NO").strip() != "NUMERICAL":
        return partial(_checked, minutes_per_check)
    unit_minutes = LOOP_TIME_UNITS.get((habit.get("Unit") or "").strip().lower())
    if unit_minutes is None:
        return partial(_counted, minutes_per_check)
    return partial(_timed, unit_minutes)
