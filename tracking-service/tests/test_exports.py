"""Export jobs in-process: expiry (the TTL index and reads past it), a job whose builder
died, and the import limit of the service itself (the gateway has its own body limit)."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from momentum_libs.testing.tokens import TestSigner
from momentum_tracking.exports import service as export_service
from momentum_tracking.exports.models import Export
from momentum_tracking.exports.service import MAX_ATTEMPTS, ExportService
from momentum_tracking.main import create_app
from momentum_tracking.settings import TrackingSettings
from pymongo import MongoClient
from tracking_support import Api


async def started(api: Api, headers: dict[str, str]) -> str:
    r = await api.client.post("/exports", json={"format": "json"}, headers=headers)
    assert r.status_code == 202, r.text
    export_id: str = r.json()["id"]
    return export_id


async def until_done(api: Api, export_id: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(600):  # a bound on waiting (~30 s), not a timing assertion
        r = await api.client.get(f"/exports/{export_id}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("ready", "failed"):
            return dict(r.json())
        await asyncio.sleep(0.05)
    raise AssertionError("the export never finished")


async def test_an_expired_export_is_gone_and_mongodb_drops_it(
    api: Api, settings: TrackingSettings
) -> None:
    headers = api.user()
    export_id = await started(api, headers)
    assert (await until_done(api, export_id, headers))["status"] == "ready"
    expiries = api.app.state.service.expiries
    # On the embedded server the TTL index is swept by the service (momentum_libs.expiry).
    assert ("exports", "expires_at", 0) in [
        (e.collection.name, e.field, e.after_s) for e in expiries.swept
    ]
    with MongoClient(settings.mongodb_url) as mongo:
        exports = mongo[settings.mongodb_db]["exports"]
        past = datetime.now(UTC) - timedelta(seconds=1)
        assert exports.update_one({"_id": export_id}, {"$set": {"expires_at": past}}).matched_count
        # Gone at once for the client, before any sweep: reads check expires_at.
        for path in (f"/exports/{export_id}", f"/exports/{export_id}/download"):
            r = await api.client.get(path, headers=headers)
            assert r.status_code == 404, r.text
            assert r.headers["content-type"] == "application/problem+json"
        assert await expiries.sweep_once() >= 1
        assert exports.count_documents({"_id": export_id}) == 0


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def left_running(settings: TrackingSettings, export_id: str, **fields: Any) -> None:
    """Put the job back in the state a builder leaves mid-way: running, no file; unless
    told, its lease lapsed a second ago (the builder was killed)."""
    with MongoClient(settings.mongodb_url) as mongo:
        exports = mongo[settings.mongodb_db]["exports"]
        left = {"status": "running", "percent": 60, "content": None, **fields}
        left.setdefault("lease_until_ms", now_ms() - 1000)
        assert exports.update_one({"_id": export_id}, {"$set": left}).matched_count


def stored(settings: TrackingSettings, export_id: str) -> dict[str, Any]:
    with MongoClient(settings.mongodb_url) as mongo:
        found = mongo[settings.mongodb_db]["exports"].find_one({"_id": export_id})
    assert found is not None
    return dict(found)


async def test_a_job_whose_builder_died_is_built_again_when_read(
    api: Api, settings: TrackingSettings
) -> None:
    headers = api.user()
    goal = await api.goal(headers, "Swim")
    export_id = await started(api, headers)
    assert (await until_done(api, export_id, headers))["status"] == "ready"
    left_running(settings, export_id)

    r = await api.client.get(f"/exports/{export_id}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("pending", "running", "ready")  # taken over, not stuck
    done = await until_done(api, export_id, headers)
    assert done["status"] == "ready"
    assert stored(settings, export_id)["attempt"] == 2
    r = await api.client.get(f"/exports/{export_id}/download", headers=headers)
    assert r.status_code == 200, r.text
    assert [g["title"] for g in r.json()["goals"]] == [goal["title"]]


async def test_a_job_being_built_is_not_taken_over(api: Api, settings: TrackingSettings) -> None:
    """A job whose lease is current is left to its builder, however often it is read."""
    headers = api.user()
    export_id = await started(api, headers)
    await until_done(api, export_id, headers)
    left_running(settings, export_id, lease_until_ms=now_ms() + 60_000)
    for _ in range(5):
        r = await api.client.get(f"/exports/{export_id}", headers=headers)
        assert r.json()["status"] == "running"
    assert stored(settings, export_id)["attempt"] == 1


async def test_a_slow_build_keeps_its_lease(
    api: Api, settings: TrackingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renewed every third of a lease: a second of lease leaves ~0.67 s for a renewal to
    # land (0.3 s left 0.2 s, and a renewal beside make test's workers took longer).
    monkeypatch.setattr(export_service, "LEASE_S", 1.0)
    real_records = ExportService.records

    async def slow_records(self: ExportService, user_id: str) -> Any:
        await asyncio.sleep(3.0)  # three leases long: renewed all along
        return await real_records(self, user_id)

    monkeypatch.setattr(ExportService, "records", slow_records)
    headers = api.user()
    export_id = await started(api, headers)
    done = await until_done(api, export_id, headers)  # reads every 50 ms meanwhile
    assert done["status"] == "ready"
    assert stored(settings, export_id)["attempt"] == 1


async def test_a_job_that_lost_its_builder_too_often_reads_failed(
    api: Api, settings: TrackingSettings
) -> None:
    headers = api.user()
    export_id = await started(api, headers)
    await until_done(api, export_id, headers)
    left_running(settings, export_id, attempt=MAX_ATTEMPTS)
    r = await api.client.get(f"/exports/{export_id}", headers=headers)
    assert r.json()["status"] == "failed"
    r = await api.client.get(f"/exports/{export_id}/download", headers=headers)
    assert r.status_code == 404


async def test_a_builder_whose_job_was_taken_over_writes_nothing(
    api: Api, settings: TrackingSettings
) -> None:
    headers = api.user()
    export_id = await started(api, headers)
    await until_done(api, export_id, headers)
    left_running(settings, export_id)
    first = Export.model_validate(stored(settings, export_id))
    exports = api.app.state.service.exports._exports
    assert await exports.take_over(first, now_ms(), now_ms() + 60_000)
    assert not await exports.take_over(first, now_ms(), now_ms() + 60_000)  # one claim
    assert not await exports.set(first, status="failed")  # the first attempt's, stalled
    assert stored(settings, export_id)["status"] == "pending"


async def test_an_import_over_the_services_limit_is_413(
    settings_for: Callable[..., TrackingSettings], signer: TestSigner
) -> None:
    app = create_app(settings_for(import_max_bytes=1024), token_keys=signer.keys)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tracking") as client:
            api = Api(client, signer, app)
            headers = {**api.user(), "Content-Type": "text/csv"}
            body = b"date,minutes,goal,note\n" + b"2026-11-20,30,Run,x\n" * 100
            r = await client.post("/imports", content=body, headers=headers)
            assert r.status_code == 413, r.text
            assert "1024" in r.json()["detail"]
