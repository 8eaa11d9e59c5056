"""Export jobs in-process: expiry (the TTL index and reads past it), and the import
limit of the service itself (the gateway has its own body limit)."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from momentum_libs.testing.tokens import TestSigner
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
    for _ in range(200):  # a bound on waiting, not a timing assertion
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
