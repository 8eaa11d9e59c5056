"""HTTP semantics through the gateway: ETags and 304, If-Match and 412, no-store,
Idempotent-Replayed, and how fresh analytics says it is."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pymongo
from bson import ObjectId
from momentum_libs.devstack import Stack

from .conftest import Account, assert_problem, new_account
from .test_tracking_e2e import MONDAY, create_goal, create_log, wait_for

Resource = tuple[str, dict[str, Any]]
"""(path of one resource, a PATCH body that changes it)."""


def resources(gw: httpx.Client, account: Account) -> list[Resource]:
    goal = create_goal(gw, account)
    target = gw.post(
        "/weekly-targets",
        json={"goal_id": goal["id"], "week_start": MONDAY, "target_minutes": 120},
        headers=account.headers,
    )
    assert target.status_code == 201, target.text
    log = create_log(gw, account, goal["id"])
    # The goal last: deleting it deletes its target and log too.
    return [
        (f"/daily-logs/{log['id']}", {"minutes": 45}),
        (f"/weekly-targets/{target.json()['id']}", {"target_minutes": 90}),
        (f"/goals/{goal['id']}", {"title": "Renamed"}),
    ]


def assert_precondition_failed(response: httpx.Response) -> None:
    problem = assert_problem(response, 412)
    assert str(problem["type"]).endswith("/precondition-failed")


def test_every_get_has_a_strong_etag_and_if_none_match_answers_304(
    gateway: httpx.Client, account: Account
) -> None:
    paths = [path for path, _ in resources(gateway, account)]
    paths += ["/goals", "/weekly-targets", "/daily-logs", "/auth/me", "/users/me"]
    paths += [f"/analytics/{read}" for read in ("dashboard", "weekly-summary", "streak", "heatmap")]
    for path in paths:
        first = gateway.get(path, headers=account.headers)
        assert first.status_code == 200, (path, first.text)
        etag = first.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"'), (path, etag)  # strong: no W/
        for tags in (etag, f'"other", {etag}', f"W/{etag}", "*"):
            again = gateway.get(path, headers={**account.headers, "If-None-Match": tags})
            assert again.status_code == 304, (path, tags, again.status_code)
            assert again.content == b""
            assert again.headers["ETag"] == etag
            assert again.headers["Cache-Control"] == "no-store"
        other = gateway.get(path, headers={**account.headers, "If-None-Match": '"stale"'})
        assert other.status_code == 200 and other.content == first.content, path


def test_the_etag_changes_exactly_when_the_resource_does(
    stack: Stack, gateway: httpx.Client, account: Account
) -> None:
    goal = create_goal(gateway, account)
    path = f"/goals/{goal['id']}"
    tag = gateway.get(path, headers=account.headers).headers["ETag"]
    # The relay publishes the creation event and clears it off the document, bumping its
    # version: nothing a client sees changed, so neither does the ETag.
    with pymongo.MongoClient(stack.mongodb_url) as mongo:
        goals = mongo[stack.database("tracking")]["goals"]
        cleared = wait_for(
            lambda: goals.find_one({"_id": ObjectId(goal["id"])}),
            lambda doc: doc is not None and not doc["outbox_pending"],
        )
        assert cleared is not None and cleared["version"] > 1
    assert gateway.get(path, headers=account.headers).headers["ETag"] == tag
    # A PATCH that changes nothing keeps it; one that changes something does not.
    same = gateway.patch(path, json={"title": goal["title"]}, headers=account.headers)
    assert same.status_code == 200 and same.headers["ETag"] == tag
    changed = gateway.patch(path, json={"title": "New title"}, headers=account.headers)
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert gateway.get(path, headers=account.headers).headers["ETag"] == changed.headers["ETag"]


def test_if_match_guards_patch_and_delete_of_goals_targets_and_logs(
    gateway: httpx.Client, account: Account
) -> None:
    for path, change in resources(gateway, account):
        read = gateway.get(path, headers=account.headers)
        old_tag = read.headers["ETag"]
        # Device A writes with the tag it read: fine, and it gets the new tag.
        first = gateway.patch(path, json=change, headers={**account.headers, "If-Match": old_tag})
        assert first.status_code == 200, (path, first.text)
        new_tag = first.headers["ETag"]
        assert new_tag != old_tag
        # Device B still holds the old tag: its PATCH and DELETE lose nothing silently.
        for stale in (old_tag, f"W/{new_tag}", '"nonsense"'):
            headers = {**account.headers, "If-Match": stale}
            assert_precondition_failed(gateway.patch(path, json=change, headers=headers))
            assert_precondition_failed(gateway.delete(path, headers=headers))
        now = gateway.get(path, headers=account.headers)
        assert now.status_code == 200 and now.json() == first.json()
        # The current tag (or *) deletes it.
        assert (
            gateway.delete(path, headers={**account.headers, "If-Match": new_tag}).status_code
            == 204
        )
        assert_problem(gateway.get(path, headers=account.headers), 404)


def test_if_match_star_and_no_if_match_write_unconditionally(
    gateway: httpx.Client, account: Account
) -> None:
    goal = create_goal(gateway, account)
    path = f"/goals/{goal['id']}"
    star = gateway.patch(path, json={"title": "A"}, headers={**account.headers, "If-Match": "*"})
    assert star.status_code == 200 and star.json()["title"] == "A"
    plain = gateway.patch(path, json={"title": "B"}, headers=account.headers)
    assert plain.status_code == 200 and plain.json()["title"] == "B"


async def _patch_all(
    base_url: str, path: str, bodies: list[dict[str, Any]], headers: dict[str, str]
) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return list(
            await asyncio.gather(*(client.patch(path, json=b, headers=headers) for b in bodies))
        )


def test_simultaneous_writes_with_one_etag_let_exactly_one_through(
    stack: Stack, gateway: httpx.Client, account: Account
) -> None:
    log = create_log(gateway, account, create_goal(gateway, account)["id"])
    path = f"/daily-logs/{log['id']}"
    tag = gateway.get(path, headers=account.headers).headers["ETag"]
    bodies = [{"minutes": 10 + n} for n in range(8)]
    responses = asyncio.run(
        _patch_all(stack.gateway_url, path, bodies, {**account.headers, "If-Match": tag})
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 7, [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200)
    assert gateway.get(path, headers=account.headers).json() == winner.json()


def test_user_specific_responses_are_no_store(gateway: httpx.Client, account: Account) -> None:
    goal = create_goal(gateway, account)
    answers = [
        gateway.get("/goals", headers=account.headers),
        gateway.get(f"/goals/{goal['id']}", headers=account.headers),
        gateway.get("/goals/000000000000000000000000", headers=account.headers),  # a 404
        gateway.post("/goals", json={}, headers=account.headers),  # a 422
        gateway.get("/analytics/dashboard", headers=account.headers),
        gateway.get("/users/me", headers=account.headers),
        gateway.post("/auth/register", json={"email": "x@example.com"}),  # a 422
        gateway.get("/goals", headers={"Authorization": "Bearer nonsense"}),  # the edge's 401
    ]
    for response in answers:
        assert response.headers["Cache-Control"] == "no-store", response.request.url
    register_response = httpx.post(
        f"{gateway.base_url}/auth/register",
        json={"email": f"no-store-{ObjectId()}@example.com", "password": "long enough pw"},
    )
    assert register_response.status_code == 201
    assert register_response.headers["Cache-Control"] == "no-store"


def test_a_replayed_daily_log_post_says_so(gateway: httpx.Client, account: Account) -> None:
    goal = create_goal(gateway, account)
    body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 25}
    headers = {**account.headers, "Idempotency-Key": f"key-{ObjectId()}"}
    first = gateway.post("/daily-logs", json=body, headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    replay = gateway.post("/daily-logs", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    plain = gateway.post("/daily-logs", json=body, headers=account.headers)
    assert plain.status_code == 201 and "Idempotent-Replayed" not in plain.headers


def test_analytics_says_how_fresh_it_is(gateway: httpx.Client) -> None:
    account = new_account(gateway)
    reads = ("dashboard", "weekly-summary", "streak", "heatmap")
    before = datetime.now(UTC).replace(microsecond=0)
    goal = create_goal(gateway, account)
    create_log(gateway, account, goal["id"], day=datetime.now(UTC).date().isoformat(), minutes=40)

    def dashboard() -> dict[str, Any]:
        return dict(gateway.get("/analytics/dashboard", headers=account.headers).json())

    seen = wait_for(dashboard, lambda d: d["total_minutes"] == 40 and d["pending"] is False)
    assert seen["total_minutes"] == 40 and seen["pending"] is False
    as_of = datetime.fromisoformat(str(seen["as_of"]).replace("Z", "+00:00"))
    assert before <= as_of <= datetime.now(UTC)
    for read in reads:
        body = gateway.get(f"/analytics/{read}", headers=account.headers).json()
        assert body["as_of"] == seen["as_of"], read
        assert isinstance(body["pending"], bool), read


def test_the_contract_documents_if_match_and_its_412(gateway: httpx.Client) -> None:
    paths = gateway.get("/openapi.json").json()["paths"]
    for path in ("/goals/{goal_id}", "/weekly-targets/{target_id}", "/daily-logs/{log_id}"):
        for method in ("patch", "delete"):
            operation = paths[path][method]
            assert "412" in operation["responses"], (method, path)
            headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
            assert "If-Match" in headers, (method, path)
