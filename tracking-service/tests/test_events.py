"""Every change is an event on the stream, written with the change (embedded outbox)."""

import uuid

from momentum_libs.events import Envelope, EventType, UserDeletedPayload
from momentum_tracking.goals.models import Goal
from momentum_tracking.logs.models import DailyLog, IdempotencyRecord
from momentum_tracking.settings import TrackingSettings
from momentum_tracking.targets.models import WeeklyTarget
from redis.asyncio import Redis
from tracking_support import Api, drained, eventually, of_type, stream_events


async def test_log_lifecycle_events_carry_versions_and_old_new(
    api: Api, stream_redis: Redis, settings: TrackingSettings
) -> None:
    user_id = uuid.uuid4().hex
    h = api.user(user_id)
    a = await api.goal(h, "a")
    b = await api.goal(h, "b")
    log = await api.log(h, a["id"], "2026-11-20", 30)
    url = f"/daily-logs/{log['id']}"
    r = await api.client.patch(url, json={"goal_id": b["id"], "date": "2026-11-19"}, headers=h)
    assert r.status_code == 200
    r = await api.client.patch(url, json={"note": "only the note"}, headers=h)
    assert r.status_code == 200
    assert (await api.client.delete(url, headers=h)).status_code == 204
    assert await drained()
    events = [e for e in await stream_events(stream_redis, settings.events_stream)
              if e.payload.get("log_id") == log["id"]]  # fmt: skip
    assert [e.type for e in events] == [
        EventType.LOG_CREATED, EventType.LOG_UPDATED, EventType.LOG_UPDATED, EventType.LOG_DELETED,
    ]  # fmt: skip
    created, moved, noted, deleted = (e.typed_payload() for e in events)
    assert (str(created.date), created.minutes, created.goal_id) == ("2026-11-20", 30, a["id"])
    assert (moved.old.goal_id, str(moved.old.date), moved.old.minutes) == (
        a["id"],
        "2026-11-20",
        30,
    )
    assert (moved.new.goal_id, str(moved.new.date), moved.new.minutes) == (
        b["id"],
        "2026-11-19",
        30,
    )
    assert noted.old == noted.new
    assert (deleted.goal_id, str(deleted.date), deleted.minutes) == (b["id"], "2026-11-19", 30)
    versions = [p.version for p in (created, moved, noted, deleted)]
    assert versions == sorted(set(versions))  # strictly growing
    assert created.version == 1
    assert all(e.user_id == user_id for e in events)
    assert len({e.event_id for e in events}) == 4
    # Once its last event is out, the tombstone stays, published, until its purge_at
    # (the tombstone retention): a PUT of its id must not bring it back.
    kept = await DailyLog.get_pymongo_collection().find({"user_id": user_id}).to_list()
    assert [(d["deleted"], d["outbox_pending"], d["outbox"]) for d in kept] == [(True, False, [])]
    assert kept[0]["purge_at"] is not None


async def test_goal_and_target_events(
    api: Api, stream_redis: Redis, settings: TrackingSettings
) -> None:
    user_id = uuid.uuid4().hex
    h = api.user(user_id)
    goal = await api.goal(h, "g")
    await api.client.patch(f"/goals/{goal['id']}", json={"title": "renamed"}, headers=h)
    target = await api.target(h, goal["id"], "2026-11-16", 300)
    await api.client.patch(
        f"/weekly-targets/{target['id']}", json={"target_minutes": 200}, headers=h
    )
    await api.client.delete(f"/weekly-targets/{target['id']}", headers=h)
    assert await drained()
    events = [e for e in await stream_events(stream_redis, settings.events_stream)
              if e.user_id == user_id]  # fmt: skip
    # Each document's events come in order (events of different documents may interleave).
    goal_events = [e for e in events if e.type.value.startswith("goal.")]
    target_events = [e for e in events if e.type.value.startswith("target.")]
    assert [e.type for e in goal_events] == [EventType.GOAL_CREATED, EventType.GOAL_UPDATED]
    assert [e.type for e in target_events] == [
        EventType.TARGET_CREATED, EventType.TARGET_UPDATED, EventType.TARGET_DELETED,
    ]  # fmt: skip
    assert len(events) == 5
    g_created, g_updated = (e.typed_payload() for e in goal_events)
    assert (g_created.title, g_created.is_active, g_created.version) == ("g", True, 1)
    assert (g_updated.title, g_updated.version > g_created.version) == ("renamed", True)
    t_minutes = [e.typed_payload().target_minutes for e in target_events]
    assert t_minutes == [300, 200, 200]
    assert str(target_events[0].typed_payload().week_start) == "2026-11-16"
    # The stored document's version is the one its last event carries.
    stored = await Goal.find_one({"_id": _oid(goal["id"])})
    assert stored is not None
    assert stored.version >= g_updated.version
    assert stored.outbox == []


async def test_user_deleted_erases_everything_of_that_user_only(
    api: Api, stream_redis: Redis, settings: TrackingSettings
) -> None:
    doomed_id, kept_id = uuid.uuid4().hex, uuid.uuid4().hex
    doomed, kept = api.user(doomed_id), api.user(kept_id)
    logs, targets, goals = [], [], []
    for title in ("one", "two"):
        goal = await api.goal(doomed, title)
        goals.append(goal["id"])
        targets.append((await api.target(doomed, goal["id"]))["id"])
        for day in ("2026-11-01", "2026-11-02"):
            logs.append((await api.log(doomed, goal["id"], day))["id"])
    r = await api.client.post(
        "/daily-logs",
        json={"goal_id": goals[0], "date": "2026-11-03", "minutes": 9},
        headers={**doomed, "Idempotency-Key": "k"},
    )
    logs.append(r.json()["id"])
    kept_goal = await api.goal(kept)
    kept_log = await api.log(kept, kept_goal["id"])

    event = Envelope.create(EventType.USER_DELETED, doomed_id, UserDeletedPayload())
    await stream_redis.xadd(settings.events_stream, event.to_stream_fields())  # type: ignore[arg-type]

    async def left() -> int:
        return (
            await Goal.find({"user_id": doomed_id, "deleted": False}).count()
            + await WeeklyTarget.find({"user_id": doomed_id, "deleted": False}).count()
            + await DailyLog.find({"user_id": doomed_id, "deleted": False}).count()
            + await IdempotencyRecord.find({"user_id": doomed_id}).count()
        )

    assert await eventually(left, lambda n: n == 0) == 0
    assert (await api.client.get("/goals", headers=doomed)).json()["items"] == []
    assert (await api.client.get("/daily-logs", headers=doomed)).json()["items"] == []
    assert (await api.client.get("/weekly-targets", headers=doomed)).json()["items"] == []
    assert await drained()
    events = await stream_events(stream_redis, settings.events_stream)
    assert {e.payload["log_id"] for e in of_type(events, EventType.LOG_DELETED, doomed_id)} == set(
        logs
    )
    assert {
        e.payload["target_id"] for e in of_type(events, EventType.TARGET_DELETED, doomed_id)
    } == set(targets)
    assert {
        e.payload["goal_id"] for e in of_type(events, EventType.GOAL_DELETED, doomed_id)
    } == set(goals)
    # The other user keeps everything.
    assert (await api.client.get(f"/daily-logs/{kept_log['id']}", headers=kept)).status_code == 200
    assert not of_type(events, EventType.LOG_DELETED, kept_id)
    # The consumer acknowledged the event (its group exists and nothing is left pending).
    state = await eventually(
        lambda: stream_redis.xpending(settings.events_stream, settings.consumer_group),
        lambda p: p["pending"] == 0,
    )
    assert state["pending"] == 0
    # A repeat of the event changes nothing (and does not fail).
    count_before = len(events)
    repeat_id = await stream_redis.xadd(settings.events_stream, event.to_stream_fields())  # type: ignore[arg-type]

    async def group() -> dict[str, object]:
        groups = await stream_redis.xinfo_groups(settings.events_stream)
        found: dict[str, object] = next(g for g in groups if g["name"] == settings.consumer_group)
        return found

    state = await eventually(
        group, lambda g: g["last-delivered-id"] == repeat_id and g["pending"] == 0
    )
    assert (state["last-delivered-id"], state["pending"]) == (repeat_id, 0)
    assert await left() == 0
    assert await drained()
    after = await stream_events(stream_redis, settings.events_stream)
    assert len(after) == count_before + 1  # only the repeated user.deleted itself


def _oid(value: str) -> object:
    from bson import ObjectId

    return ObjectId(value)
