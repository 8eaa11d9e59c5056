"""Goals, weekly targets and daily logs of docs/api.md through the gateway, on the running stack."""

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import redis
from momentum_libs.devstack import Stack
from momentum_libs.events import Envelope, EventType, UnknownEventError
from momentum_libs.testing.waiting import eventually_blocking

from .conftest import PASSWORD, Account, assert_problem, new_account

T = TypeVar("T")
MONDAY = "2026-11-16"


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 20.0) -> T:
    """Poll until ``done`` (a bound on waiting, not an assertion on speed)."""
    return eventually_blocking(probe, done, timeout_s=timeout_s)


def create_goal(gw: httpx.Client, account: Account, title: str = "Ship it") -> dict[str, Any]:
    r = gw.post("/goals", json={"title": title}, headers=account.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def create_log(
    gw: httpx.Client, account: Account, goal_id: str, day: str = "2026-11-20", minutes: int = 30
) -> dict[str, Any]:
    r = gw.post(
        "/daily-logs",
        json={"goal_id": goal_id, "date": day, "minutes": minutes},
        headers=account.headers,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def all_pages(gw: httpx.Client, path: str, account: Account, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = gw.get(path, params=query, headers=account.headers)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


def stream_events(stack: Stack) -> list[Envelope]:
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        entries: Any = client.xrange(stack.events_stream)
    finally:
        client.close()
    events = []
    for _id, fields in entries:
        # The session's stream is shared: a test plants an entry that is no event (to see
        # it dead-lettered); it is no event of these tests either.
        with contextlib.suppress(UnknownEventError):
            events.append(Envelope.from_stream_fields(dict(fields)))
    return events


def user_events(stack: Stack, user_id: str, type_: EventType) -> list[Envelope]:
    return [e for e in stream_events(stack) if e.user_id == user_id and e.type is type_]


def test_goal_lifecycle(gateway: httpx.Client, account: Account) -> None:
    first = create_goal(gateway, account, "first")
    second = gateway.post(
        "/goals",
        json={"title": "second", "description": "why", "target_date": "2027-06-30"},
        headers=account.headers,
    ).json()
    assert (first["is_active"], second["is_active"]) == (True, False)
    assert second["target_date"] == "2027-06-30"

    r = gateway.get("/goals", headers=account.headers)
    assert [g["id"] for g in r.json()["items"]] == [second["id"], first["id"]]
    r = gateway.patch(f"/goals/{second['id']}", json={"description": None}, headers=account.headers)
    assert (r.json()["description"], r.json()["target_date"]) == (None, "2027-06-30")

    r = gateway.patch(f"/goals/{second['id']}/activate", headers=account.headers)
    assert r.status_code == 200
    assert r.json()["is_active"] is True
    r = gateway.patch(f"/goals/{second['id']}/activate", headers=account.headers)
    assert r.status_code == 200
    active = gateway.get("/goals", params={"is_active": True}, headers=account.headers).json()
    assert [g["id"] for g in active["items"]] == [second["id"]]
    inactive = gateway.get("/goals", params={"is_active": False}, headers=account.headers).json()
    assert [g["id"] for g in inactive["items"]] == [first["id"]]


def test_validation_and_auth_errors(gateway: httpx.Client, account: Account) -> None:
    goal = create_goal(gateway, account)
    h = account.headers
    bad: list[tuple[str, dict[str, Any]]] = [
        ("/goals", {"title": ""}),
        ("/goals", {"title": "x" * 201}),
        ("/goals", {"title": "t", "description": "d" * 2001}),
        ("/goals", {"title": "t", "owner": "me"}),
        (
            "/weekly-targets",
            {"goal_id": goal["id"], "week_start": "2026-11-17", "target_minutes": 5},
        ),
        ("/weekly-targets", {"goal_id": goal["id"], "week_start": MONDAY, "target_minutes": 0}),
        ("/weekly-targets", {"goal_id": goal["id"], "week_start": MONDAY, "target_minutes": 10081}),
        ("/daily-logs", {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 0}),
        ("/daily-logs", {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 1441}),
        ("/daily-logs", {"goal_id": goal["id"], "date": "1999-12-31", "minutes": 5}),
        # Three days ahead is after tomorrow wherever the user is: until tracking hears of
        # a new account's timezone it allows any timezone's tomorrow (exact edges:
        # tests/test_local_days.py).
        ("/daily-logs", {"goal_id": goal["id"], "date": _days_from_today(3), "minutes": 5}),
        ("/daily-logs", {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 5, "x": 1}),
    ]
    for path, body in bad:
        problem = assert_problem(gateway.post(path, json=body, headers=h), 422)
        assert problem["errors"], (path, body)
    ok = gateway.post(
        "/daily-logs",
        json={"goal_id": goal["id"], "date": _days_from_today(1), "minutes": 1440},
        headers=h,
    )
    assert ok.status_code == 201, ok.text
    assert_problem(gateway.get("/daily-logs", params={"limit": 0}, headers=h), 422)
    assert_problem(gateway.get("/daily-logs", params={"limit": 201}, headers=h), 422)
    assert_problem(gateway.get("/goals", params={"cursor": "not-a-cursor"}, headers=h), 422)
    backwards = {"from": "2026-11-05", "to": "2026-11-01"}
    assert_problem(gateway.get("/daily-logs", params=backwards, headers=h), 422)
    for path in ("/goals", "/weekly-targets", "/daily-logs"):
        r = gateway.get(path)
        assert_problem(r, 401)
        assert r.headers["www-authenticate"].lower().startswith("bearer")


def test_another_users_resources_are_404(gateway: httpx.Client) -> None:
    owner, stranger = new_account(gateway), new_account(gateway)
    goal = create_goal(gateway, owner)
    log = create_log(gateway, owner, goal["id"])
    target = gateway.post(
        "/weekly-targets",
        json={"goal_id": goal["id"], "week_start": MONDAY, "target_minutes": 60},
        headers=owner.headers,
    ).json()
    for path in (
        f"/goals/{goal['id']}",
        f"/daily-logs/{log['id']}",
        f"/weekly-targets/{target['id']}",
        "/goals/not-an-id",
        "/daily-logs/0123456789abcdef01234567",
    ):
        assert_problem(gateway.get(path, headers=stranger.headers), 404)
        assert_problem(gateway.delete(path, headers=stranger.headers), 404)
    assert_problem(gateway.patch(f"/goals/{goal['id']}/activate", headers=stranger.headers), 404)
    body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 5}
    assert_problem(gateway.post("/daily-logs", json=body, headers=stranger.headers), 404)
    mine = create_goal(gateway, stranger)
    move = {"goal_id": goal["id"]}
    their_log = create_log(gateway, stranger, mine["id"])
    r = gateway.patch(f"/daily-logs/{their_log['id']}", json=move, headers=stranger.headers)
    assert_problem(r, 404)
    assert gateway.get(f"/daily-logs/{log['id']}", headers=owner.headers).json() == log
    assert gateway.get("/daily-logs", headers=stranger.headers).json()["items"] == [their_log]


def test_weekly_targets(gateway: httpx.Client, account: Account) -> None:
    a, b = create_goal(gateway, account, "a"), create_goal(gateway, account, "b")
    h = account.headers
    weeks = ["2026-11-02", "2026-11-09", "2026-11-16"]
    for week in weeks:
        for goal in (a, b):
            r = gateway.post(
                "/weekly-targets",
                json={"goal_id": goal["id"], "week_start": week, "target_minutes": 120},
                headers=h,
            )
            assert r.status_code == 201, r.text
    dup = {"goal_id": a["id"], "week_start": weeks[0], "target_minutes": 5}
    assert_problem(gateway.post("/weekly-targets", json=dup, headers=h), 409)
    listed = all_pages(gateway, "/weekly-targets", account, limit=4)
    assert [t["week_start"] for t in listed] == [w for w in reversed(weeks) for _ in "ab"]
    only_a = all_pages(gateway, "/weekly-targets", account, goal_id=a["id"])
    assert {t["goal_id"] for t in only_a} == {a["id"]}
    assert len(only_a) == 3
    ranged = all_pages(gateway, "/weekly-targets", account, **{"from": weeks[1], "to": weeks[1]})
    assert {t["week_start"] for t in ranged} == {weeks[1]}
    assert len(ranged) == 2
    target = only_a[0]
    r = gateway.patch(f"/weekly-targets/{target['id']}", json={"note": "n"}, headers=h)
    assert (r.json()["note"], r.json()["target_minutes"]) == ("n", 120)
    assert gateway.delete(f"/weekly-targets/{target['id']}", headers=h).status_code == 204
    again = {"goal_id": a["id"], "week_start": target["week_start"], "target_minutes": 30}
    assert gateway.post("/weekly-targets", json=again, headers=h).status_code == 201


def test_daily_logs_pages_walk_every_log_once_while_logs_are_added(
    gateway: httpx.Client, account: Account
) -> None:
    goal = create_goal(gateway, account)
    originals = {
        create_log(gateway, account, goal["id"], f"2026-10-{i % 12 + 1:02d}")["id"]
        for i in range(30)
    }
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = gateway.get("/daily-logs", params=params, headers=account.headers).json()
        seen += page["items"]
        create_log(gateway, account, goal["id"], "2026-10-06")  # lands on every side of a page
        create_log(gateway, account, goal["id"], "2026-10-13")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [x["id"] for x in seen]
    assert len(ids) == len(set(ids))
    assert originals <= set(ids)
    keys = [(x["date"], x["id"]) for x in seen]
    assert keys == sorted(keys, reverse=True)
    inclusive = all_pages(
        gateway, "/daily-logs", account, **{"from": "2026-10-02", "to": "2026-10-03"}
    )
    assert {x["date"] for x in inclusive} == {"2026-10-02", "2026-10-03"}


def test_idempotency_key_stores_one_log(gateway: httpx.Client, account: Account) -> None:
    goal = create_goal(gateway, account)
    body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 25}
    headers = {**account.headers, "Idempotency-Key": uuid.uuid4().hex}
    first = gateway.post("/daily-logs", json=body, headers=headers)
    retry = gateway.post("/daily-logs", json=body, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert_problem(gateway.post("/daily-logs", json={**body, "minutes": 26}, headers=headers), 422)
    assert [x["id"] for x in all_pages(gateway, "/daily-logs", account)] == [first.json()["id"]]


def test_log_events_carry_old_and_new(
    gateway: httpx.Client, account: Account, stack: Stack
) -> None:
    user_id = str(account.user["id"])
    a, b = create_goal(gateway, account, "a"), create_goal(gateway, account, "b")
    log = create_log(gateway, account, a["id"], "2026-11-20", 30)
    r = gateway.patch(
        f"/daily-logs/{log['id']}",
        json={"goal_id": b["id"], "date": "2026-11-19", "minutes": 45},
        headers=account.headers,
    )
    assert r.status_code == 200, r.text
    updated = wait_for(
        lambda: user_events(stack, user_id, EventType.LOG_UPDATED), lambda evs: len(evs) >= 1
    )
    assert len(updated) == 1
    payload = updated[0].payload
    assert payload["old"] == {"goal_id": a["id"], "date": "2026-11-20", "minutes": 30}
    assert payload["new"] == {"goal_id": b["id"], "date": "2026-11-19", "minutes": 45}
    created = user_events(stack, user_id, EventType.LOG_CREATED)
    assert [e.payload["log_id"] for e in created] == [log["id"]]
    assert payload["version"] > created[0].payload["version"]


def test_goal_delete_cascades_in_tracking_and_analytics(
    gateway: httpx.Client, account: Account, stack: Stack
) -> None:
    user_id = str(account.user["id"])
    goal = create_goal(gateway, account)
    today = _days_from_today(0)
    logs = [create_log(gateway, account, goal["id"], today, 20) for _ in range(3)]
    target = gateway.post(
        "/weekly-targets",
        json={"goal_id": goal["id"], "week_start": _monday_of_this_week(), "target_minutes": 60},
        headers=account.headers,
    ).json()

    def total() -> Any:
        return gateway.get("/analytics/dashboard", headers=account.headers).json()

    assert wait_for(total, lambda d: d.get("total_minutes") == 60)["total_minutes"] == 60

    assert gateway.delete(f"/goals/{goal['id']}", headers=account.headers).status_code == 204
    assert all_pages(gateway, "/daily-logs", account) == []
    assert all_pages(gateway, "/weekly-targets", account) == []
    assert_problem(gateway.get(f"/weekly-targets/{target['id']}", headers=account.headers), 404)
    dashboard = wait_for(total, lambda d: d.get("total_minutes") == 0)
    assert dashboard["total_minutes"] == 0
    deleted = {e.payload["log_id"] for e in user_events(stack, user_id, EventType.LOG_DELETED)}
    assert deleted == {x["id"] for x in logs}


async def test_concurrent_activations_leave_one_active(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        credentials = {"email": email, "password": PASSWORD}
        r = await client.post("/auth/register", json=credentials)
        assert r.status_code == 201, r.text
        r = await client.post("/auth/login", json=credentials)
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        ids = []
        for i in range(4):
            r = await client.post("/goals", json={"title": f"g{i}"}, headers=h)
            ids.append(r.json()["id"])
        results = await asyncio.gather(
            *(client.patch(f"/goals/{gid}/activate", headers=h) for gid in ids * 3)
        )
        assert all(r.status_code == 200 for r in results), [r.text for r in results]
        goals = (await client.get("/goals", headers=h)).json()["items"]
        assert sum(1 for g in goals if g["is_active"]) == 1


def test_account_deletion_erases_tracking_data(gateway: httpx.Client, stack: Stack) -> None:
    account = new_account(gateway)
    user_id = str(account.user["id"])
    goal = create_goal(gateway, account)
    log = create_log(gateway, account, goal["id"])
    assert gateway.delete("/users/me", headers=account.headers).status_code == 204
    deleted = wait_for(
        lambda: user_events(stack, user_id, EventType.GOAL_DELETED), lambda evs: len(evs) >= 1
    )
    assert [e.payload["goal_id"] for e in deleted] == [goal["id"]]
    # The goal is tombstoned first, its logs after (erase_user): their event may follow.
    log_deleted = wait_for(
        lambda: user_events(stack, user_id, EventType.LOG_DELETED), lambda evs: len(evs) >= 1
    )
    assert [e.payload["log_id"] for e in log_deleted] == [log["id"]]


def _days_from_today(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def _monday_of_this_week() -> str:
    today = datetime.now(UTC).date()
    return (today - timedelta(days=today.weekday())).isoformat()
