"""Rebuild: seed tracking's ``daily_logs`` directly, then time analytics' rebuild command."""

import asyncio
import datetime as dt
import re
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
        collection = client[stack.database("tracking")]["daily_logs"]
        started = time.perf_counter()
        for i in range(0, len(docs), BATCH):
            await collection.insert_many(docs[i : i + BATCH], ordered=False)
        seed_s = time.perf_counter() - started
    finally:
        await client.close()
    log(f"  seeded {len(docs)} logs into tracking's daily_logs in {seed_s:.1f}s")
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *command,
        env=stack.env_for("analytics"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"rebuild exited {proc.returncode}: {out.decode()[-2000:]}")
    reported = re.findall(r"(\d[\d,]*)\s+logs", out.decode())
    log(f"  rebuild of {len(docs)} logs took {seconds:.1f}s")
    return {
        "logs": len(docs),
        "users": len(users),
        "seconds": round(seconds, 2),
        "logs_per_s": round(len(docs) / seconds, 1),
        "seed_seconds": round(seed_s, 2),
        "command": "analytics rebuild --all",
        "reported": reported[-1] if reported else None,
    }
