"""Idempotency-Key on POST /daily-logs: one log per key, whatever the retries."""

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from momentum_libs.clock import utcnow as now
from momentum_libs.events import EventType
from momentum_tracking.logs.models import IdempotencyRecord
from momentum_tracking.logs.repository import IdempotencyRepository
from momentum_tracking.logs.schemas import LogCreate
from momentum_tracking.logs.service import request_hash
from momentum_tracking.settings import TrackingSettings
from redis.asyncio import Redis
from tracking_support import Api, drained, of_type, stream_events


async def _post(api: Api, h: dict[str, str], key: str, body: dict[str, Any]) -> Any:
    return await api.client.post("/daily-logs", json=body, headers={**h, "Idempotency-Key": key})


async def test_retry_answers_the_first_response_and_stores_one_log(
    api: Api, stream_redis: Redis, settings: TrackingSettings
) -> None:
    user_id = uuid.uuid4().hex
    h = api.user(user_id)
    goal = await api.goal(h)
    body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 25}
    first = await _post(api, h, "key-1", body)
    assert first.status_code == 201
    for _ in range(3):
        again = await _post(api, h, "key-1", body)
        assert again.status_code == 201
        assert again.json() == first.json()
    concurrent = await asyncio.gather(*(_post(api, h, "key-2", body) for _ in range(6)))
    assert {r.status_code for r in concurrent} <= {201, 409}
    created = {r.json()["id"] for r in concurrent if r.status_code == 201}
    assert len(created) == 1
    r = await api.client.get("/daily-logs", headers=h)
    assert sorted(x["id"] for x in r.json()["items"]) == sorted([first.json()["id"], *created])
    assert await drained()
    events = await stream_events(stream_redis, settings.events_stream)
    assert len(of_type(events, EventType.LOG_CREATED, user_id)) == 2


async def test_same_key_other_body_is_422(api: Api) -> None:
    h = api.user()
    goal = await api.goal(h)
    body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 25}
    assert (await _post(api, h, "k", body)).status_code == 201
    r = await _post(api, h, "k", {**body, "minutes": 26})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.client.get("/daily-logs", headers=h)
    assert [x["minutes"] for x in r.json()["items"]] == [25]


async def test_keys_are_per_user(api: Api) -> None:
    alice, bob = api.user(), api.user()
    a_goal, b_goal = await api.goal(alice), await api.goal(bob)
    day = {"date": "2026-11-20", "minutes": 5}
    ra = await _post(api, alice, "shared", {"goal_id": a_goal["id"], **day})
    rb = await _post(api, bob, "shared", {"goal_id": b_goal["id"], **day})
    assert (ra.status_code, rb.status_code) == (201, 201)
    assert ra.json()["id"] != rb.json()["id"]


async def test_in_flight_is_409_and_an_abandoned_claim_is_finished_with_its_log_id(
    api: Api, settings: TrackingSettings
) -> None:
    user_id = uuid.uuid4().hex
    h = api.user(user_id)
    goal = await api.goal(h)
    body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 25}
    t = now()
    # A first request claimed the key and is still working on it.
    claim = IdempotencyRecord(
        _id=f"{user_id}:busy",
        user_id=user_id,
        request_hash=request_hash(LogCreate.model_validate(body)),
        log_id="6b0000000000000000000001",
        lease_until=t + timedelta(seconds=60),
        expires_at=t + timedelta(seconds=settings.idempotency_ttl_s),
    )
    assert await IdempotencyRepository().claim_key(claim)
    r = await _post(api, h, "busy", body)
    assert r.status_code == 409
    assert (await api.client.get("/daily-logs", headers=h)).json()["items"] == []

    # The first request died: once its lease is over, a retry finishes it, with its log id.
    expired = t - timedelta(seconds=1)
    dead = claim.model_copy(update={"id": f"{user_id}:dead", "lease_until": expired})
    assert await IdempotencyRepository().claim_key(dead)
    r = await _post(api, h, "dead", body)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == dead.log_id
    again = await _post(api, h, "dead", body)
    assert again.json() == r.json()
    items = (await api.client.get("/daily-logs", headers=h)).json()["items"]
    assert [x["id"] for x in items] == [dead.log_id]


async def test_a_failed_request_does_not_burn_its_key(api: Api) -> None:
    h = api.user()
    goal = await api.goal(h)
    missing = {"goal_id": "0123456789abcdef01234567", "date": "2026-11-20", "minutes": 5}
    assert (await _post(api, h, "k", missing)).status_code == 404
    fixed = {**missing, "goal_id": goal["id"]}
    # The same key with the corrected body works: the 404 stored nothing.
    assert (await _post(api, h, "k", fixed)).status_code == 201
    assert (await _post(api, h, "k", fixed)).status_code == 201
    assert len((await api.client.get("/daily-logs", headers=h)).json()["items"]) == 1


async def test_a_key_is_remembered_at_least_a_day(api: Api) -> None:
    user_id = uuid.uuid4().hex
    h = api.user(user_id)
    goal = await api.goal(h)
    before = now()
    body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 5}
    assert (await _post(api, h, "k", body)).status_code == 201
    record = await IdempotencyRepository().get_key(user_id, f"{user_id}:k")
    assert record is not None
    assert record.state == "done"
    assert record.expires_at - before >= timedelta(hours=24)
