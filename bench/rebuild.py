"""Rebuild: seed tracking's ``daily_logs`` directly, then time analytics' rebuild command."""

import asyncio
import contextlib
import datetime as dt
import json
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bson import ObjectId
from momentum_libs.devstack import Stack
from pymongo import AsyncMongoClient

REPO = Path(__file__).resolve().parents[1]
USERS = 50
BATCH = 5_000


def find_command() -> list[str] | None:
    """analytics-service's rebuild script (its ``[project.scripts]`` entry), if it has one."""
    pyproject = REPO / "analytics-service" / "pyproject.toml"
    scripts: dict[str, str] = (
        tomllib.loads(pyproject.read_text()).get("project", {}).get("scripts", {})
    )
    for name, target in scripts.items():
        if "rebuild" in name:
            script = Path(sys.executable).parent / name
            if script.exists():
                return [str(script), "--all"]
            module, _, func = target.partition(":")
            code = f"import sys; from {module} import {func} as m; sys.exit(m())"
            return [sys.executable, "-c", code, "--all"]
    return None


def log_documents(users: list[str], goals: dict[str, str], count: int) -> list[dict[str, Any]]:
    """Documents shaped like tracking's daily_logs: two a day per user, back from today."""
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    docs = []
    per_user = -(-count // len(users))
    for user in users:
        for n in range(per_user):
            if len(docs) == count:
                break
            docs.append(
                {
                    "_id": ObjectId(),
                    "user_id": user,
                    "goal_id": goals[user],
                    "date": (today - dt.timedelta(days=n // 2)).isoformat(),
                    "minutes": 10 + n % 50,
                    "note": None,
                    "version": 1,
                    "deleted": False,
                    "outbox": [],
                    "outbox_pending": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    return docs


def goal_documents(goals: dict[str, str]) -> list[dict[str, Any]]:
    """Each rebuild user's one active goal, shaped like tracking's ``goals``."""
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "_id": ObjectId(goal_id),
            "user_id": user,
            "title": "Rebuild goal",
            "description": None,
            "target_date": None,
            "is_active": True,
            "active_slot": user,
            "activated_at": now,
            "version": 1,
            "deleted": False,
            "outbox": [],
            "outbox_pending": False,
            "created_at": now,
            "updated_at": now,
        }
        for user, goal_id in goals.items()
    ]


async def measure(stack: Stack, count: int, log: Callable[[str], None]) -> dict[str, Any]:
    command = find_command()
    if command is None:
        log("  no rebuild command in analytics-service's [project.scripts]: skipped")
        return {"logs": count, "seconds": None, "logs_per_s": None, "note": "no rebuild command"}
    users = [f"bench-rebuild-{n:03d}" for n in range(USERS)]
    goals = {u: str(ObjectId()) for u in users}
    docs = log_documents(users, goals, count)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url)
    try:
        db = client[stack.database("tracking")]
        await db["goals"].insert_many(goal_documents(goals))
        collection = db["daily_logs"]
        started = time.perf_counter()
        for i in range(0, len(docs), BATCH):
            await collection.insert_many(docs[i : i + BATCH], ordered=False)
        seed_s = time.perf_counter() - started
        # Everything the command will read: ours plus what earlier phases wrote.
        total = await collection.count_documents({"deleted": False})
    finally:
        await client.close()
    log(f"  seeded {len(docs)} logs into tracking's daily_logs in {seed_s:.1f}s")
    env = stack.env_for("analytics")
    env["MOMENTUM_ANALYTICS_TRACKING_MONGODB_DB"] = stack.database("tracking")
    env["MOMENTUM_LOG_LEVEL"] = "WARNING"
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"rebuild exited {proc.returncode}: {out.decode()[-2000:]}")
    reported = _report(out.decode())
    # Our own count of what it had to read: its report is informative only.
    logs = total
    log(f"  rebuild of {logs} logs took {seconds:.1f}s (its own report: {reported})")
    return {
        "logs": logs,
        "users": reported.get("users"),
        "seconds": round(seconds, 2),
        "logs_per_s": round(logs / seconds, 1),
        "seeded_logs": len(docs),
        "seed_seconds": round(seed_s, 2),
        "command": f"{Path(command[0]).name} --all",
        "reported": reported,
    }


def _report(output: str) -> dict[str, Any]:
    """The command's own JSON line (users, logs, seconds, logs_per_second), if any."""
    for line in reversed(output.splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict) and "logs" in value:
                return value
    return {}
