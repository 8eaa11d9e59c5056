"""Rebuild from tracking's data: same projection as the live one, even from nothing."""

import asyncio
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from typing import Any

from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.reads.service import ReadService
from momentum_analytics.rebuild.cli import run
from momentum_analytics.rebuild.service import Rebuilder
from momentum_analytics.rebuild.source import TrackingSource

from .analytics_support import FakeTracking, projection_matches
from .conftest import Service


async def snapshot(repo: ProjectionRepository, user_id: str) -> dict[str, Any]:
    """What the reads see: every day per goal, totals, streak figures, active goal."""
    user = await repo.get_user(user_id)
    assert user is not None
    months = {
        key: doc.model_dump()["days"] for key, doc in (await repo.months_of_user(user_id)).items()
    }
    reads = ReadService(repo)
    return {
        "months": {key: days for key, days in months.items() if days},
        "month_totals": user.month_totals,
        "recent_days": user.recent_days,
        "active_goal": user.active_goal,
        "folds": (user.folds, user.folds_at),
        "streak": await reads.streak(user_id),
        "heatmap": await reads.heatmap(user_id, None, None),
        "deleted_goals": user.deleted_goals,
    }


def three_years() -> tuple[FakeTracking, str]:
    t = FakeTracking()
    goal = t.create_goal("Three years")
    side = t.create_goal("Side project", active=False)
    doomed = t.create_goal("Abandoned", active=False)
    first = date(2023, 11, 25)
    last = date(2026, 11, 24)
    logs = []
    day = first
    n = 0
    while day <= last:
        logs.append(t.create_log(goal, day, 15 + n % 50))
        if n % 7 == 0:
            t.create_log(side, day, 20)
        if n % 30 == 0:
            t.create_log(doomed, day, 5)
        if day.weekday() == 0:
            t.set_target(goal, day, 300 + n % 100)
        day += timedelta(days=1)
        n += 1
    for log_id in logs[100:110]:
        t.delete_log(log_id)  # a broken streak in 2024
    for log_id in logs[500:520]:
        t.update_log(log_id, minutes=99)
    t.update_log(logs[-1], day=last - timedelta(days=400))
    t.delete_goal(doomed)
    return t, goal


async def test_rebuild_of_three_years_equals_the_live_projection(service: Service) -> None:
    t, goal = three_years()
    await service.send(t)
    await t.save(service.tracking_db)
    await projection_matches(service.repo, t)
    live = await snapshot(service.repo, t.user_id)
    assert sum(live["month_totals"].values()) == t.total() > 0

    # Rebuild in place, while the service runs: nothing changes.
    report = await run(service.settings, [t.user_id])
    assert report.users == 1 and report.logs == len(t.logs)
    print(f"\nrebuild in place: {report.as_dict()}")
    assert await snapshot(service.repo, t.user_id) == live

    # Damage the projection (lost days, a wrong total); the rebuild repairs it.
    year_2024 = [f"2024-{m:02d}" for m in range(1, 13)]
    await service.repo.months.delete_many({"user_id": t.user_id, "month": {"$in": year_2024}})
    await service.repo.users.update_one(
        {"_id": t.user_id}, {"$set": {"month_totals": {}, "recent_days": {}}}
    )
    damaged = await snapshot(service.repo, t.user_id)
    assert damaged != live
    await run(service.settings, [t.user_id])
    assert await snapshot(service.repo, t.user_id) == live
    week = date(2026, 11, 16)
    summary = await ReadService(service.repo).weekly_summary(t.user_id, week, goal)
    assert (
        summary.target_minutes
        == t.targets[
            next(tid for tid, x in t.targets.items() if x.week_start == week)
        ].target_minutes
    )

    # A new deployment with an empty database: the console script rebuilds everything.
    fresh_db = service.settings.mongodb_db + "_fresh"
    env = dict(os.environ)
    env.update(
        {
            "MONGODB_URL": service.settings.mongodb_url,
            "MOMENTUM_ANALYTICS_MONGODB_DB": fresh_db,
            "MOMENTUM_ANALYTICS_TRACKING_MONGODB_DB": service.settings.tracking_mongodb_db,
            "MOMENTUM_LOG_LEVEL": "WARNING",
        }
    )
    script = os.path.join(os.path.dirname(sys.executable), "momentum-analytics-rebuild")
    proc = await asyncio.create_subprocess_exec(
        script, "--all", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    print(f"rebuild from nothing: {result}")
    assert result["users"] == 1 and result["logs"] == len(t.logs)
    fresh = ProjectionRepository(service.mongo[fresh_db])
    assert await snapshot(fresh, t.user_id) == live
    await projection_matches(fresh, t)


async def test_rebuild_while_events_stream_in(service: Service) -> None:
    """The rebuild runs while the consumer applies a burst: both converge on tracking's state."""
    t = FakeTracking()
    goal = t.create_goal()
    logs = [t.create_log(goal, date(2026, 1, 1) + timedelta(days=n), 10 + n) for n in range(150)]
    for log_id in logs[::3]:
        t.update_log(log_id, minutes=1)
    for log_id in logs[::5]:
        t.delete_log(log_id)
    await t.save(service.tracking_db)
    await t.flush(service.redis, service.settings.events_stream)
    rebuilt = asyncio.create_task(run(service.settings, [t.user_id]))
    await service.wait_drained()
    report = await rebuilt
    assert report.users == 1
    await projection_matches(service.repo, t)


async def test_all_pages_through_every_user_once_and_resumes_after_one(service: Service) -> None:
    """Users known to tracking only, to analytics only (their goals gone from tracking),
    to both, or deleted in analytics: ``--all`` pages through each live one exactly once,
    in id order, whatever the page size; ``after`` resumes past a user."""
    trackers = [FakeTracking() for _ in range(7)]
    for n, t in enumerate(trackers):
        goal = t.create_goal()
        t.create_log(goal, date(2026, 11, 2), 10 + n)
    for t in trackers[:4]:
        await t.save(service.tracking_db)  # tracking knows 0-3
    for t in trackers[2:]:
        await service.send(t)  # analytics knows 2-6
    trackers[6].delete_user()
    await service.send(trackers[6])
    await service.wait_drained()
    expected = sorted(t.user_id for t in trackers[:6])
    rebuilder = Rebuilder(
        service.repo, TrackingSource(service.tracking_db), service.settings.rebuild_concurrency
    )
    for size in (1, 2, 3, 100):
        pages = [page async for page in rebuilder.user_id_pages(page=size)]
        assert [u for page in pages for u in page] == expected, size
        assert all(len(page) <= 2 * size for page in pages)
    resumed = [u async for page in rebuilder.user_id_pages(expected[2], page=2) for u in page]
    assert resumed == expected[3:]
    report = await rebuilder.rebuild_all(after=expected[0])
    assert report.users == 5
    for t in trackers[:4]:
        if t.user_id > expected[0]:  # the ones rebuilt, from tracking's documents
            await projection_matches(service.repo, t)


async def test_all_with_an_include_rebuilds_only_the_users_it_accepts(service: Service) -> None:
    """The repair of a partition's trimmed events rebuilds that partition's users alone:
    the others keep what their own partitions' readers keep writing."""
    trackers = [FakeTracking() for _ in range(6)]
    for n, t in enumerate(trackers):
        t.create_log(t.create_goal(), date(2026, 11, 2), 10 + n)
        await t.save(service.tracking_db)  # tracking only: analytics knows none of them
    chosen = {t.user_id for t in trackers[::2]}
    rebuilder = Rebuilder(
        service.repo, TrackingSource(service.tracking_db), service.settings.rebuild_concurrency
    )
    report = await rebuilder.rebuild_all(include=chosen.__contains__)
    assert report.users == 3
    for t in trackers:
        if t.user_id in chosen:
            await projection_matches(service.repo, t)
        else:
            assert await service.repo.get_user(t.user_id) is None


def test_the_rebuild_command_loads_neither_the_redis_client_nor_fastapi() -> None:
    """The rebuild talks to MongoDB only: importing both cost every run 0.6 to 0.9 s
    (bench/results/analysis.md), paid by an operator rebuilding one user."""
    code = (
        "import sys, momentum_analytics.rebuild.cli\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'fastapi'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
