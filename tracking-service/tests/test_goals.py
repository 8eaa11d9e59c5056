"""Goals: validation, ownership, PATCH semantics, listing, activation, cascade on delete."""

import asyncio
import uuid
from typing import Any

import pytest
from momentum_libs.events import EventType
from momentum_tracking.goals.models import Goal
from momentum_tracking.settings import TrackingSettings
from redis.asyncio import Redis
from tracking_support import Api, eventually, of_type, stream_events

OTHER_ID = "0123456789abcdef01234567"


async def test_first_goal_is_active_later_ones_are_not(api: Api) -> None:
    h = api.user()
    first = await api.goal(h, "first")
    second = await api.goal(h, "second")
    assert first["is_active"] is True
    assert second["is_active"] is False
    assert set(first) == {
        "id", "title", "description", "target_date", "is_active", "created_at", "updated_at",
    }  # fmt: skip
    assert first["created_at"].endswith("Z")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "x" * 201},
        {"title": "ok", "description": "d" * 2001},
        {"title": "ok", "target_date": "2026-13-01"},
        {"title": "ok", "target_date": "2026-11-24T00:00:00Z"},
        {"title": "ok", "target_date": 1764000000},
        {"title": "ok", "unknown": 1},
        {"title": None},
    ],
)
async def test_create_rejects_invalid_bodies(api: Api, body: dict[str, Any]) -> None:
    r = await api.client.post("/goals", json=body, headers=api.user())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"]


async def test_bounds_are_inclusive(api: Api) -> None:
    r = await api.client.post(
        "/goals",
        json={"title": "x" * 200, "description": "d" * 2000, "target_date": "2027-01-31"},
        headers=api.user(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["target_date"] == "2027-01-31"


async def test_no_token_is_401(api: Api) -> None:
    r = await api.client.get("/goals")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = await api.client.get("/goals", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


async def test_patch_changes_only_given_fields_and_null_clears(api: Api) -> None:
    h = api.user()
    r = await api.client.post(
        "/goals",
        json={"title": "t", "description": "d", "target_date": "2027-05-01"},
        headers=h,
    )
    goal = r.json()
    r = await api.client.patch(f"/goals/{goal['id']}", json={"title": "new"}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["description"], r.json()["target_date"]) == (
        "new", "d", "2027-05-01",
    )  # fmt: skip
    r = await api.client.patch(
        f"/goals/{goal['id']}", json={"description": None, "target_date": None}, headers=h
    )
    assert (r.json()["title"], r.json()["description"], r.json()["target_date"]) == (
        "new", None, None,
    )  # fmt: skip
    assert r.json()["updated_at"] >= goal["updated_at"]
    for bad in ({"title": None}, {"title": ""}, {"is_active": True}, {"nope": 1}):
        r = await api.client.patch(f"/goals/{goal['id']}", json=bad, headers=h)
        assert r.status_code == 422, (bad, r.text)
    r = await api.client.get(f"/goals/{goal['id']}", headers=h)
    assert r.json()["title"] == "new"


async def test_other_users_missing_and_invalid_ids_are_404(api: Api) -> None:
    owner, stranger = api.user(), api.user()
    goal = await api.goal(owner)
    for gid in (goal["id"], OTHER_ID, "not-an-object-id", "%20"):
        for method, path, body in (
            ("GET", f"/goals/{gid}", None),
            ("PATCH", f"/goals/{gid}", {"title": "mine now"}),
            ("PATCH", f"/goals/{gid}/activate", None),
            ("DELETE", f"/goals/{gid}", None),
        ):
            r = await api.client.request(method, path, json=body, headers=stranger)
            assert r.status_code == 404, (method, path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.client.get(f"/goals/{goal['id']}", headers=owner)
    assert r.status_code == 200
    assert r.json()["title"] == goal["title"]
    r = await api.client.get("/goals", headers=stranger)
    assert r.json() == {"items": [], "next_cursor": None}


async def test_list_newest_first_with_active_filter(api: Api) -> None:
    h = api.user()
    made = [await api.goal(h, f"g{i}") for i in range(4)]
    r = await api.client.get("/goals", headers=h)
    assert [g["id"] for g in r.json()["items"]] == [g["id"] for g in reversed(made)]
    r = await api.client.get("/goals", params={"is_active": "true"}, headers=h)
    assert [g["id"] for g in r.json()["items"]] == [made[0]["id"]]
    r = await api.client.get("/goals", params={"is_active": "false"}, headers=h)
    assert [g["id"] for g in r.json()["items"]] == [g["id"] for g in reversed(made[1:])]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"limit": "x"}, {"cursor": "garbage"}, {"cursor": "eyJ4Ijox"}],
)
async def test_bad_paging_is_422(api: Api, params: dict[str, Any]) -> None:
    r = await api.client.get("/goals", params=params, headers=api.user())
    assert r.status_code == 422, r.text


async def test_cursor_of_another_list_is_422(api: Api) -> None:
    h = api.user()
    goal = await api.goal(h)
    for day in ("2026-11-01", "2026-11-02"):
        await api.log(h, goal["id"], day)
    r = await api.client.get("/daily-logs", params={"limit": 1}, headers=h)
    cursor = r.json()["next_cursor"]
    assert cursor
    r = await api.client.get("/goals", params={"cursor": cursor}, headers=h)
    assert r.status_code == 422


async def test_walking_pages_returns_each_goal_once_while_goals_are_added(api: Api) -> None:
    h = api.user()
    originals = [(await api.goal(h, f"g{i}"))["id"] for i in range(23)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        r = await api.client.get("/goals", params=params, headers=h)
        assert r.status_code == 200
        page = r.json()
        assert len(page["items"]) <= 5
        seen += [g["id"] for g in page["items"]]
        await api.goal(h, "added while walking")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(originals) <= set(seen)
    assert [i for i in seen if i in originals] == list(reversed(originals))
    r = await api.client.get("/goals", params={"limit": 200}, headers=h)
    assert len(r.json()["items"]) == 23 + len(seen) // 5 + (1 if len(seen) % 5 else 0)


async def test_activate_moves_the_active_flag_and_is_idempotent(
    api: Api, stream_redis: Redis, settings: TrackingSettings
) -> None:
    h = api.user()
    first = await api.goal(h, "first")
    second = await api.goal(h, "second")
    r = await api.client.patch(f"/goals/{second['id']}/activate", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] is True
    for _ in range(2):  # repeating it is harmless
        r = await api.client.patch(f"/goals/{second['id']}/activate", headers=h)
        assert r.status_code == 200
        assert r.json()["is_active"] is True
    r = await api.client.get("/goals", headers=h)
    states = {g["id"]: g["is_active"] for g in r.json()["items"]}
    assert states == {first["id"]: False, second["id"]: True}

    events = await eventually(
        lambda: stream_events(stream_redis, settings.events_stream),
        lambda evs: len(of_type(evs, EventType.GOAL_ACTIVATED)) >= 1,
    )
    activated = of_type(events, EventType.GOAL_ACTIVATED)
    assert [e.payload["goal_id"] for e in activated] == [second["id"]]  # once, not 3 times
    assert activated[0].payload["activated_at"] is not None
    deactivated = [
        e for e in of_type(events, EventType.GOAL_UPDATED) if e.payload["goal_id"] == first["id"]
    ]
    assert [e.payload["is_active"] for e in deactivated] == [False]


async def test_concurrent_activations_leave_exactly_one_active(api: Api) -> None:
    user_id = uuid.uuid4().hex
    h = api.user(user_id)
    goals = [await api.goal(h, f"g{i}") for i in range(5)]
    order = [g["id"] for g in goals] * 4
    responses = await asyncio.gather(
        *(api.client.patch(f"/goals/{gid}/activate", headers=h) for gid in order)
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    r = await api.client.get("/goals", headers=h)
    active = [g for g in r.json()["items"] if g["is_active"]]
    assert len(active) == 1
    # And the database agrees: one document holds the user's active slot.
    user_goals = await Goal.find({"user_id": user_id}).to_list()
    assert len(user_goals) == 5
    assert sum(1 for g in user_goals if g.is_active and not g.deleted) == 1
    assert [g["id"] for g in active] == [str(g.id) for g in user_goals if g.is_active]


async def test_deleting_the_active_goal_lets_the_next_new_goal_be_active(api: Api) -> None:
    h = api.user()
    first = await api.goal(h)
    assert (await api.client.delete(f"/goals/{first['id']}", headers=h)).status_code == 204
    assert (await api.client.get(f"/goals/{first['id']}", headers=h)).status_code == 404
    assert (await api.client.delete(f"/goals/{first['id']}", headers=h)).status_code == 404
    again = await api.goal(h)
    assert again["is_active"] is True


async def test_delete_cascades_to_targets_and_logs_with_events(
    api: Api, stream_redis: Redis, settings: TrackingSettings
) -> None:
    h = api.user()
    doomed = await api.goal(h, "doomed")
    kept = await api.goal(h, "kept")
    targets = [await api.target(h, doomed["id"], w) for w in ("2026-11-09", "2026-11-16")]
    logs = [await api.log(h, doomed["id"], d) for d in ("2026-11-10", "2026-11-11", "2026-11-11")]
    kept_log = await api.log(h, kept["id"], "2026-11-11")
    kept_target = await api.target(h, kept["id"], "2026-11-16")

    r = await api.client.delete(f"/goals/{doomed['id']}", headers=h)
    assert r.status_code == 204
    r = await api.client.get("/daily-logs", headers=h)
    assert [x["id"] for x in r.json()["items"]] == [kept_log["id"]]
    r = await api.client.get("/weekly-targets", headers=h)
    assert [x["id"] for x in r.json()["items"]] == [kept_target["id"]]
    for t in targets:
        assert (await api.client.get(f"/weekly-targets/{t['id']}", headers=h)).status_code == 404
    for log in logs:
        assert (await api.client.get(f"/daily-logs/{log['id']}", headers=h)).status_code == 404
    r = await api.client.get(f"/daily-logs/{kept_log['id']}", headers=h)
    assert r.status_code == 200

    def complete(events: list[Any]) -> bool:
        return bool(of_type(events, EventType.GOAL_DELETED))

    events = await eventually(lambda: stream_events(stream_redis, settings.events_stream), complete)
    deleted_logs = {e.payload["log_id"] for e in of_type(events, EventType.LOG_DELETED)}
    deleted_targets = {e.payload["target_id"] for e in of_type(events, EventType.TARGET_DELETED)}
    assert deleted_logs == {x["id"] for x in logs}
    assert deleted_targets == {x["id"] for x in targets}
    assert [e.payload["goal_id"] for e in of_type(events, EventType.GOAL_DELETED)] == [doomed["id"]]
    # A deleted log's event carries what it was, so analytics can take it away.
    one = next(e for e in of_type(events, EventType.LOG_DELETED))
    assert one.payload["minutes"] == 30
    assert one.payload["goal_id"] == doomed["id"]


async def test_concurrent_first_goals_make_exactly_one_active(api: Api) -> None:
    h = api.user()
    responses = await asyncio.gather(
        *(api.client.post("/goals", json={"title": f"g{i}"}, headers=h) for i in range(8))
    )
    assert [r.status_code for r in responses] == [201] * 8
    assert sum(1 for r in responses if r.json()["is_active"]) == 1
    listed = (await api.client.get("/goals", headers=h)).json()["items"]
    assert sum(1 for g in listed if g["is_active"]) == 1
