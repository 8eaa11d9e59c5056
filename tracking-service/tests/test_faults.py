"""Faults for real: Redis down under writes, and the service killed before its relay ran."""

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from momentum_libs.events import EventType
from momentum_libs.stores import ManagedProcess, free_port
from momentum_libs.testing.plugin import OwnMongo, OwnRedis
from momentum_libs.testing.tokens import TestSigner
from momentum_tracking.main import create_app
from momentum_tracking.settings import TrackingSettings
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from tracking_support import (
    drained,
    eventually,
    of_type,
    pending_events,
    stream_events,
)


async def test_redis_down_delays_events_but_loses_none(
    own_redis: OwnRedis,
    redis_url: str,
    signer: TestSigner,
    settings_for: Callable[..., TrackingSettings],
) -> None:
    # Events go to our own Redis, which we stop; revoked sessions stay on the shared one
    # (token checks fail closed, by design, when their Redis is down).
    settings = settings_for(redis_url=own_redis.url, sessions_redis_url=redis_url)
    app = create_app(settings, token_keys=signer.keys)
    user_id = "redis-down-user"
    h = {"Authorization": f"Bearer {signer.mint(user_id)}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tracking") as client:
            r = await client.post("/goals", json={"title": "g"}, headers=h)
            goal_id = r.json()["id"]
            assert await drained()

            own_redis.stop()
            r = await client.get("/health/db")
            assert (r.status_code, r.json()["redis"], r.json()["mongodb"]) == (503, "down", "ok")
            created = []
            for i in range(100):
                r = await client.post(
                    "/daily-logs",
                    json={"goal_id": goal_id, "date": f"2026-10-{i % 28 + 1:02d}", "minutes": 10},
                    headers=h,
                )
                assert r.status_code == 201, r.text
                created.append(r.json()["id"])
            assert await pending_events() == 100  # recorded, waiting for Redis

            own_redis.start()  # same port, same app: nothing is restarted
            assert await drained(timeout_s=60)
            stream = Redis.from_url(own_redis.url, decode_responses=True)
            try:
                events = await stream_events(stream, settings.events_stream)
            finally:
                await stream.aclose()
            logs = of_type(events, EventType.LOG_CREATED, user_id)
            assert len(logs) == 100
            assert len({e.event_id for e in logs}) == 100
            assert sorted(e.payload["log_id"] for e in logs) == sorted(created)
            r = await client.get("/health/db")
            assert r.status_code == 200
            assert r.json() == {"status": "ok", "mongodb": "ok", "redis": "ok"}


@pytest.fixture
def jwks_url(signer: TestSigner) -> Iterator[str]:
    """The signer's public keys served over HTTP, as auth-service serves its JWKS."""
    body = json.dumps(signer.jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


async def _start(env: dict[str, str], port: int, log: Path) -> ManagedProcess:
    args = [
        sys.executable, "-m", "uvicorn", "--factory", "momentum_tracking.main:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    proc = ManagedProcess("tracking", args, env=env, log_path=log).start()

    async def health() -> int:
        if not proc.running():
            return -1
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/health", timeout=1)).status_code
        except httpx.HTTPError:
            return 0

    status = await eventually(health, lambda s: s in (200, -1), timeout_s=30, interval_s=0.1)
    assert status == 200, _tail(log)
    return proc


async def test_killed_before_the_relay_ran_publishes_after_restart(
    own_redis: OwnRedis,
    redis_url: str,
    mongodb_url: str,
    namespace: str,
    signer: TestSigner,
    jwks_url: str,
    tmp_path: Path,
) -> None:
    database = f"{namespace}momentum_tracking"
    stream_name = f"{namespace}momentum.events"
    port = free_port()
    env = {
        **os.environ,
        "MONGODB_URL": mongodb_url,
        "REDIS_URL": own_redis.url,
        "MOMENTUM_TRACKING_SESSIONS_REDIS_URL": redis_url,
        "MOMENTUM_EVENTS_STREAM": stream_name,
        "MOMENTUM_TRACKING_MONGODB_DB": database,
        "MOMENTUM_JWKS_URL": jwks_url,
        "MOMENTUM_LOG_JSON": "false",
        "MOMENTUM_TRACKING_RELAY_MAX_BACKOFF_S": "0.5",
    }
    own_redis.stop()  # the service cannot publish: its write must still succeed
    h = {"Authorization": f"Bearer {signer.mint('killed-user')}"}
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    procs: list[ManagedProcess] = []
    try:
        procs.append(await _start(env, port, tmp_path / "tracking-1.log"))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            r = await client.post("/goals", json={"title": "g"}, headers=h)
            assert r.status_code == 201, r.text
            r = await client.post(
                "/daily-logs",
                json={"goal_id": r.json()["id"], "date": "2026-11-20", "minutes": 42},
                headers=h,
            )
            assert r.status_code == 201, r.text
            log_id = r.json()["id"]
        procs[0].signal(signal.SIGKILL)
        assert procs[0].proc is not None
        assert procs[0].proc.wait(10) == -signal.SIGKILL

        from bson import ObjectId

        stored = await mongo[database]["daily_logs"].find_one({"_id": ObjectId(log_id)})
        assert stored is not None
        assert [e["type"] for e in stored["outbox"]] == ["log.created"]  # never published

        own_redis.start()
        procs.append(await _start(env, port, tmp_path / "tracking-2.log"))
        stream = Redis.from_url(own_redis.url, decode_responses=True)
        try:
            events = await eventually(
                lambda: stream_events(stream, stream_name),
                lambda evs: bool(of_type(evs, EventType.LOG_CREATED)),
                timeout_s=30,
            )
        finally:
            await stream.aclose()
        published = of_type(events, EventType.LOG_CREATED, "killed-user")
        assert [e.payload["log_id"] for e in published] == [log_id]
        assert published[0].payload["minutes"] == 42
        assert published[0].event_id == stored["outbox"][0]["event_id"]
    finally:
        for proc in procs:
            proc.stop()
        await mongo.close()


async def test_mongodb_down_is_503_then_recovers(
    own_mongo: OwnMongo, signer: TestSigner, settings_for: Callable[..., TrackingSettings]
) -> None:
    settings = settings_for(mongodb_url=own_mongo.url, store_timeout_ms=1500)
    app = create_app(settings, token_keys=signer.keys)
    h = {"Authorization": f"Bearer {signer.mint('mongo-down-user')}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tracking") as client:
            goal = (await client.post("/goals", json={"title": "g"}, headers=h)).json()
            own_mongo.stop()
            try:
                body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 5}
                outage = [
                    await client.get("/goals", headers=h),
                    await client.get(f"/goals/{goal['id']}", headers=h),
                    await client.post("/daily-logs", json=body, headers=h),
                    await client.post(
                        "/daily-logs", json=body, headers={**h, "Idempotency-Key": "k"}
                    ),
                ]
                for r in outage:
                    assert r.status_code == 503, r.text
                    assert r.headers["content-type"].startswith("application/problem+json")
                    assert "127.0.0.1" not in r.text
                r = await client.get("/health/db")
                assert (r.status_code, r.json()["mongodb"]) == (503, "down")
            finally:
                own_mongo.start()

            async def listed() -> int:
                return (await client.get("/goals", headers=h)).status_code

            assert await eventually(listed, lambda s: s == 200, timeout_s=30) == 200
            r = await client.post("/daily-logs", json=body, headers={**h, "Idempotency-Key": "k"})
            assert r.status_code == 201, r.text
            r = await client.get("/goals", headers=h)
            assert [g["id"] for g in r.json()["items"]] == [goal["id"]]
