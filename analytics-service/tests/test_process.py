"""The service as a real process: SIGKILL in the middle of a burst, and write->visible lag."""

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from momentum_analytics.projections.repository import ProjectionRepository
from momentum_libs.mongo import mongo_client
from momentum_libs.stores import ManagedProcess, free_port
from momentum_libs.testing.waiting import eventually
from redis.asyncio import Redis

from .analytics_support import FakeTracking, drained, projection_matches, publish
from .conftest import Service, SettingsFactory


def start_service(settings: Any, port: int, log_path: Any) -> ManagedProcess:
    env = dict(os.environ)
    env.update(
        {
            "MONGODB_URL": settings.mongodb_url,
            "REDIS_URL": settings.redis_url,
            "MOMENTUM_EVENTS_STREAM": settings.events_stream,
            "MOMENTUM_ANALYTICS_MONGODB_DB": settings.mongodb_db,
            "MOMENTUM_ANALYTICS_CONSUMER_CLAIM_IDLE_MS": "500",
            "MOMENTUM_ANALYTICS_CONSUMER_BLOCK_MS": "100",
            # Small reads: the burst takes many of them, so a SIGKILL soon after the first
            # lands mid-burst even when this process gets little CPU (at the default 100
            # the consumer took the whole burst in a few reads, before the test could kill
            # it, under make test's workers).
            "MOMENTUM_ANALYTICS_CONSUMER_BATCH_SIZE": "10",
            "MOMENTUM_LOG_LEVEL": "WARNING",
        }
    )
    args = [
        sys.executable, "-m", "uvicorn", "--factory", "momentum_analytics.main:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    proc = ManagedProcess("analytics", args, env=env, log_path=log_path).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.running(), log_path.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.stop()
    raise TimeoutError("analytics did not start")


async def test_sigkill_mid_burst_loses_nothing_and_counts_nothing_twice(
    make_settings: SettingsFactory, tmp_path: Any
) -> None:
    settings = make_settings()
    redis = Redis.from_url(settings.redis_url)
    mongo = mongo_client(settings.mongodb_url, 5000)
    repo = ProjectionRepository(mongo[settings.mongodb_db])
    trackers = []
    events = []
    base = date(2026, 6, 30)
    for u in range(6):
        t = FakeTracking()
        goal = t.create_goal()
        other = t.create_goal("other", active=False)
        logs = [t.create_log(goal, base - timedelta(days=n), 10 + n) for n in range(60)]
        for n, log_id in enumerate(logs[:30]):
            t.update_log(log_id, minutes=5 + u, day=base - timedelta(days=n + 1 + n % 3))
        for log_id in logs[30:45]:
            t.delete_log(log_id)
        t.create_log(other, base, 7)
        trackers.append(t)
        events.extend(t.take())
    port = free_port()
    proc = start_service(settings, port, tmp_path / "analytics-1.log")
    try:
        await publish(redis, settings.events_stream, events)

        async def some_applied() -> bool:
            return await repo.users.count_documents({}) > 0

        assert await eventually(some_applied, timeout_s=30, interval_s=0.005)
        await asyncio.sleep(0.05)
        proc.signal(signal.SIGKILL)
        assert proc.proc is not None
        proc.proc.wait(10)
        group = settings.consumer_group
        assert not await drained(redis, settings.events_stream, group), "burst already done"
        pending = (await redis.xpending(settings.events_stream, group))["pending"]
        print(f"\nSIGKILL with {pending} entries pending (delivered, not acknowledged)")
        proc = start_service(settings, port, tmp_path / "analytics-2.log")

        async def done() -> bool:
            return await drained(redis, settings.events_stream, group)

        assert await eventually(done, timeout_s=120)
        for t in trackers:
            await projection_matches(repo, t)
        dead = await redis.exists(settings.dead_letters)
        assert not dead, "no event may be dead-lettered"
    finally:
        proc.stop()
        await redis.aclose()
        await mongo.close()


async def test_write_to_visible_lag_is_reported(service: Service, record_property: Any) -> None:
    t = FakeTracking()
    goal = t.create_goal()
    await service.send(t)
    lags: list[float] = []
    today = datetime.now(UTC).date()
    for n in range(10):
        t.create_log(goal, today - timedelta(days=n), 1)
        started = time.perf_counter()
        await t.flush(service.redis, service.settings.events_stream)
        expected = n + 1

        async def visible(expected: int = expected) -> bool:
            r = await service.get("/analytics/dashboard", t.user_id)
            return bool(r.json()["total_minutes"] == expected)

        assert await eventually(visible, timeout_s=10, interval_s=0.005)
        lags.append((time.perf_counter() - started) * 1000)
    lags.sort()
    median, worst = lags[len(lags) // 2], lags[-1]
    record_property("write_to_visible_ms_median", round(median, 1))
    record_property("write_to_visible_ms_max", round(worst, 1))
    print(f"\nwrite -> visible in analytics: median {median:.1f} ms, max {worst:.1f} ms")
    streak = (await service.get("/analytics/streak", t.user_id)).json()
    assert streak["current_streak"] == 10


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
