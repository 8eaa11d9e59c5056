"""Rebuild: seed tracking's ``daily_logs`` directly, then time analytics' rebuild command.

``python -m bench.rebuild --rss-ratio [--small N] [--large N]`` measures instead the peak
RSS of ``--all`` over many users against over few (each on its own fresh nx-27017).
"""

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bson import ObjectId
from momentum_libs.devstack import Stack
from momentum_libs.stores import start_nx_mongo
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
        store_read = await read_speed(collection)
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
        # The store's own ceiling in this run: the rebuild cannot read faster than this.
        "store_read_docs_per_s": store_read,
        "of_store_read": round(logs / seconds / store_read, 3),
    }


async def read_speed(collection: Any) -> float:
    """Documents per second of one plain read of the whole collection (the rebuild's
    logs are read whole, in batches of the same size)."""
    started = time.perf_counter()
    read = 0
    async for _ in collection.find({}, batch_size=10_000):
        read += 1
    return round(read / (time.perf_counter() - started), 1)


def _report(output: str) -> dict[str, Any]:
    """The command's own JSON line (users, logs, seconds, logs_per_second), if any."""
    for line in reversed(output.splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict) and "logs" in value:
                return value
    return {}


# -- memory: --all over many users in the memory of few ----------------------------------
RSS_LOGS_PER_USER = 2


async def _seed_users(url: str, db_name: str, count: int) -> None:
    """``count`` users, each with one goal and RSS_LOGS_PER_USER logs, in tracking's database."""
    users = [str(ObjectId()) for _ in range(count)]
    goals = {u: str(ObjectId()) for u in users}
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        db = client[db_name]
        # The index tracking declares and the rebuild reads by (tracking is not run here):
        # without it every read of a user scans the whole collection.
        for name in ("goals", "daily_logs", "weekly_targets", "breaks"):
            await db[name].create_index([("user_id", 1)], name="user")
        goal_docs = goal_documents(goals)
        logs = log_documents(users, goals, count * RSS_LOGS_PER_USER)
        for docs, name in ((goal_docs, "goals"), (logs, "daily_logs")):
            for i in range(0, len(docs), BATCH):
                await db[name].insert_many(docs[i : i + BATCH], ordered=False)
    finally:
        await client.close()


def _run_measuring_rss(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in KiB, output) of the command, from its own ``VmHWM``.

    Not from ``wait4``'s ``ru_maxrss``: Linux carries the high-water mark of the address
    space a child had before ``execve`` into its own, and that was this process's, which
    had just built every seeded document (the first 100k-user run read 286 MB that way
    while the rebuild itself never passed 79 MB). ``VmHWM`` belongs to the new address
    space; read every 50 ms, the last value is the peak but for the final 50 ms."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        peak_kib = 0
        while proc.poll() is None:
            peak_kib = max(peak_kib, _high_water_kib(proc.pid))
            time.sleep(0.05)
        output.seek(0)
        out = output.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"rebuild exited {proc.returncode}: {out[-2000:]}")
    return time.perf_counter() - started, peak_kib, out


def _high_water_kib(pid: int) -> int:
    """The process's peak resident set so far (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def rss_ratio(small: int, large: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Peak RSS of ``rebuild --all`` over ``large`` users ÷ over ``small`` users, each run
    on a fresh nx-27017 seeded with that many users."""
    command = find_command()
    assert command is not None, "no rebuild command in analytics-service's [project.scripts]"
    runs: dict[str, Any] = {}
    for users in (small, large):
        with tempfile.TemporaryDirectory(prefix="momentum-rss-") as tmp:
            url, mongo = start_nx_mongo(None, log_dir=Path(tmp))
            try:
                asyncio.run(_seed_users(url, "rss_tracking", users))
                env = dict(os.environ)
                env.update(
                    MONGODB_URL=url,
                    MOMENTUM_ANALYTICS_MONGODB_DB="rss_analytics",
                    MOMENTUM_ANALYTICS_TRACKING_MONGODB_DB="rss_tracking",
                    MOMENTUM_LOG_LEVEL="WARNING",
                )
                seconds, peak_kib, out = _run_measuring_rss(command, env)
            finally:
                mongo.stop()
        reported = _report(out)
        runs[str(users)] = {
            "users": users,
            "logs": reported.get("logs"),
            "seconds": round(seconds, 1),
            "logs_per_s": round((reported.get("logs") or 0) / seconds, 1),
            "peak_rss_mb": round(peak_kib / 1024, 1),
        }
        log(f"  rebuild --all over {users} users: {runs[str(users)]}")
    ratio = runs[str(large)]["peak_rss_mb"] / runs[str(small)]["peak_rss_mb"]
    return {"runs": runs, "rss_ratio": round(ratio, 3), "target": "<= 1.2"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rebuild",
        description="Peak RSS of the rebuild's --all over many users vs over few.",
    )
    parser.add_argument("--rss-ratio", action="store_true", required=True)
    parser.add_argument("--small", type=int, default=1_000, help="users of the first run")
    parser.add_argument("--large", type=int, default=100_000, help="users of the second run")
    args = parser.parse_args(argv)
    result = rss_ratio(args.small, args.large, lambda line: print(line, file=sys.stderr))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
