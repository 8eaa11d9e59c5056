"""PUT with client-chosen ids (issue 16, item 1) through the gateway: create, replace,
idempotent repeats, no resurrection of a deleted id, If-Match, and POST's rules."""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from momentum_libs.devstack import Stack
from momentum_libs.events import EventType

from .conftest import Account, assert_problem, new_account
from .test_tracking_e2e import create_goal, user_events, wait_for

MONDAY = "2026-11-16"


def put(gw: httpx.Client, account: Account, path: str, body: dict[str, Any], **headers: str) -> Any:
    return gw.put(path, json=body, headers={**account.headers, **headers})


def test_put_goal_creates_then_replaces_and_a_repeat_changes_nothing(
    gateway: httpx.Client, account: Account, stack: Stack
) -> None:
    goal_id = str(uuid.uuid4())
    path = f"/goals/{goal_id}"
    body = {"title": "Offline goal", "description": "from a phone"}
    created = put(gateway, account, path, body)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == goal_id
    assert created.json()["is_active"] is True  # POST's rule: the first goal is active
    tag = created.headers["ETag"]
    again = put(gateway, account, path, body)
    assert again.status_code == 200
    assert again.headers["ETag"] == tag and again.json() == created.json()
    # The upper-case spelling of the same UUID names the same goal.
    assert put(gateway, account, f"/goals/{goal_id.upper()}", body).headers["ETag"] == tag
    replaced = put(gateway, account, path, {"title": "Renamed"})
    assert replaced.status_code == 200
    assert replaced.json()["title"] == "Renamed" and replaced.json()["description"] is None
    assert replaced.headers["ETag"] != tag
    got = gateway.get(path, headers=account.headers)
    assert got.json() == replaced.json() and got.headers["ETag"] == replaced.headers["ETag"]
    # Outbox events as POST and PATCH: one creation, one update (the repeats wrote nothing).
    user_id = str(account.user["id"])

    def events() -> list[Any]:
        return [
            e.type
            for e in user_events(stack, user_id, EventType.GOAL_CREATED)
            + user_events(stack, user_id, EventType.GOAL_UPDATED)
            if e.payload["goal_id"] == goal_id
        ]

    assert wait_for(events, lambda found: len(found) == 2) == [
        EventType.GOAL_CREATED,
        EventType.GOAL_UPDATED,
    ]
    # A second goal made by PUT while one is active starts inactive.
    second = put(gateway, account, f"/goals/{uuid.uuid4()}", {"title": "Second"})
    assert second.status_code == 201 and second.json()["is_active"] is False


def test_put_ids_must_be_uuids_and_post_ids_keep_working(
    gateway: httpx.Client, account: Account
) -> None:
    body = {"title": "x"}
    problem = assert_problem(put(gateway, account, "/goals/not-an-id", body), 422)
    assert "UUID" in str(problem["detail"])
    # An ObjectId no one made: POST makes those, so PUT does not create one.
    assert_problem(put(gateway, account, "/goals/665f1c2e8b1e4a3d9c0a1b3d", body), 404)
    posted = create_goal(gateway, account, "Made by POST")
    replaced = put(gateway, account, f"/goals/{posted['id']}", {"title": "Replaced by PUT"})
    assert replaced.status_code == 200 and replaced.json()["title"] == "Replaced by PUT"
    assert_problem(put(gateway, account, f"/goals/{uuid.uuid4()}", {"titel": "typo"}), 422)


def test_put_of_a_deleted_id_is_410_never_a_resurrection(
    gateway: httpx.Client, account: Account
) -> None:
    goal_id, target_id, log_id = (str(uuid.uuid4()) for _ in range(3))
    goal = {"title": "Doomed"}
    target = {"goal_id": goal_id, "week_start": MONDAY, "target_minutes": 60}
    log = {"goal_id": goal_id, "date": "2026-11-20", "minutes": 30}
    assert put(gateway, account, f"/goals/{goal_id}", goal).status_code == 201
    assert put(gateway, account, f"/weekly-targets/{target_id}", target).status_code == 201
    assert put(gateway, account, f"/daily-logs/{log_id}", log).status_code == 201
    for path in (f"/daily-logs/{log_id}", f"/weekly-targets/{target_id}"):
        assert gateway.delete(path, headers=account.headers).status_code == 204
    assert gateway.delete(f"/goals/{goal_id}", headers=account.headers).status_code == 204
    for path, body in (
        (f"/goals/{goal_id}", goal),
        (f"/weekly-targets/{target_id}", target),
        (f"/daily-logs/{log_id}", log),
    ):
        for _ in range(2):  # a retry is refused the same way
            problem = assert_problem(put(gateway, account, path, body), 410)
            assert str(problem["type"]).endswith("/gone")
        assert_problem(gateway.get(path, headers=account.headers), 404)
    # A log of a goal deleted with its cascade (never PUT itself) is gone too.
    other_goal, swept = str(uuid.uuid4()), str(uuid.uuid4())
    assert put(gateway, account, f"/goals/{other_goal}", goal).status_code == 201
    swept_log = {**log, "goal_id": other_goal}
    assert put(gateway, account, f"/daily-logs/{swept}", swept_log).status_code == 201
    assert gateway.delete(f"/goals/{other_goal}", headers=account.headers).status_code == 204
    assert_problem(put(gateway, account, f"/daily-logs/{swept}", swept_log), 410)


def test_put_honours_if_match(gateway: httpx.Client, account: Account) -> None:
    path = f"/goals/{uuid.uuid4()}"
    # No current representation: any If-Match fails (RFC 9110 §13.1.1), even "*".
    for tag in ('"nope"', "*"):
        assert_problem(put(gateway, account, path, {"title": "a"}, **{"If-Match": tag}), 412)
    created = put(gateway, account, path, {"title": "a"})
    tag = created.headers["ETag"]
    assert_problem(put(gateway, account, path, {"title": "b"}, **{"If-Match": '"stale.1"'}), 412)
    assert gateway.get(path, headers=account.headers).json()["title"] == "a"
    ok = put(gateway, account, path, {"title": "b"}, **{"If-Match": tag})
    assert ok.status_code == 200 and ok.json()["title"] == "b"
    assert_problem(put(gateway, account, path, {"title": "c"}, **{"If-Match": tag}), 412)


def test_put_keeps_the_rules_of_post(gateway: httpx.Client, account: Account) -> None:
    goal_id = str(uuid.uuid4())
    target = {"goal_id": goal_id, "week_start": MONDAY, "target_minutes": 60}
    log = {"goal_id": goal_id, "date": "2026-11-20", "minutes": 30}
    target_path, log_path = f"/weekly-targets/{uuid.uuid4()}", f"/daily-logs/{uuid.uuid4()}"
    # Their goal does not exist yet (an offline client's replay out of order): 404, and
    # the id is not spent: once the goal is there, the same PUT creates.
    assert_problem(put(gateway, account, target_path, target), 404)
    assert_problem(put(gateway, account, log_path, log), 404)
    assert put(gateway, account, f"/goals/{goal_id}", {"title": "g"}).status_code == 201
    assert put(gateway, account, target_path, target).status_code == 201
    assert put(gateway, account, log_path, log).status_code == 201
    # One target per goal and week, whatever its id.
    assert_problem(put(gateway, account, f"/weekly-targets/{uuid.uuid4()}", target), 409)
    # A target keeps its goal and week; its minutes and note are replaced.
    moved = {**target, "week_start": "2026-11-23"}
    assert_problem(put(gateway, account, target_path, moved), 409)
    replaced = put(gateway, account, target_path, {**target, "target_minutes": 90})
    assert replaced.status_code == 200 and replaced.json()["target_minutes"] == 90
    assert_problem(put(gateway, account, target_path, {**target, "week_start": "2026-11-17"}), 422)
    # Dates: not before 2000, not after local tomorrow.
    too_late = "2100-01-01"
    assert_problem(put(gateway, account, log_path, {**log, "date": too_late}), 422)
    assert_problem(put(gateway, account, log_path, {**log, "date": "1999-12-31"}), 422)
    assert put(gateway, account, log_path, {**log, "minutes": 45}).json()["minutes"] == 45
    # Another user's goal is a 404 for a new log, and the log's own id is another's: 409
    # (a UUID is chosen twice only on purpose) or 404, never a write.
    stranger = new_account(gateway)
    assert_problem(put(gateway, stranger, f"/daily-logs/{uuid.uuid4()}", log), 404)
    stranger_goal = put(gateway, stranger, f"/goals/{goal_id}", {"title": "mine?"})
    assert stranger_goal.status_code == 409
    assert gateway.get(f"/goals/{goal_id}", headers=account.headers).json()["title"] == "g"


async def test_racing_puts_of_one_new_id_create_it_once(stack: Stack, account: Account) -> None:
    path = f"/goals/{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        answers = await asyncio.gather(
            *(client.put(path, json={"title": "race"}, headers=account.headers) for _ in range(8))
        )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 7 + [201], [r.text for r in answers]
    assert len({r.headers["ETag"] for r in answers}) == 1


def test_put_logs_after_many_deletions_in_a_month_are_all_counted(
    gateway: httpx.Client, account: Account, stack: Stack
) -> None:
    """analytics' month keeps 64 deleted entries (TOMBSTONES_KEPT) and drops older ones; a
    client's random UUID sorts anywhere among the dropped ids. Every new log is still
    counted, and none is dead-lettered as a deleted log coming back."""
    goal = create_goal(gateway, account)
    today = datetime.now(UTC).date().isoformat()
    for _ in range(80):
        path = f"/daily-logs/{uuid.uuid4()}"
        body = {"goal_id": goal["id"], "date": today, "minutes": 5}
        assert put(gateway, account, path, body).status_code == 201
        assert gateway.delete(path, headers=account.headers).status_code == 204
    minutes = list(range(1, 41))
    for m in minutes:
        body = {"goal_id": goal["id"], "date": today, "minutes": m}
        assert put(gateway, account, f"/daily-logs/{uuid.uuid4()}", body).status_code == 201

    def dashboard() -> Any:
        return gateway.get("/analytics/dashboard", headers=account.headers).json()

    assert wait_for(dashboard, lambda d: d.get("total_minutes") == sum(minutes))[
        "total_minutes"
    ] == sum(minutes)
    user_id = str(account.user["id"])
    dead = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        entries: Any = dead.xrange(f"{stack.events_stream}.dead.analytics")
    finally:
        dead.close()
    assert [e for _, e in entries if user_id in str(e)] == []
