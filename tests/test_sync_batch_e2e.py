"""POST /batch (issue 16, item 2) through the gateway: ops in order, each on its own,
through the single requests' rules; limits and bad ops."""

import uuid
from typing import Any

import httpx

from .conftest import Account, assert_problem

MONDAY = "2026-11-16"


def batch(gw: httpx.Client, account: Account, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = gw.post("/batch", json={"ops": ops}, headers=account.headers)
    assert r.status_code == 200, r.text
    results = list(r.json()["results"])
    assert [x["index"] for x in results] == list(range(len(ops)))
    return results


def test_a_batch_applies_its_ops_in_order_each_on_its_own(
    gateway: httpx.Client, account: Account
) -> None:
    goal_id, target_id, log_id = (str(uuid.uuid4()) for _ in range(3))
    log = {"goal_id": goal_id, "date": "2026-11-20", "minutes": 30}
    ops = [
        # Out of order first: the log's goal does not exist yet.
        {"op": "put", "type": "daily_log", "id": log_id, "body": log},
        {"op": "put", "type": "goal", "id": goal_id, "body": {"title": "Batched"}},
        {"op": "put", "type": "daily_log", "id": log_id, "body": log},
        {"op": "put", "type": "daily_log", "id": log_id, "body": log},  # a duplicate
        {
            "op": "put",
            "type": "weekly_target",
            "id": target_id,
            "body": {"goal_id": goal_id, "week_start": MONDAY, "target_minutes": 60},
        },
        {"op": "patch", "type": "daily_log", "id": log_id, "body": {"minutes": 45}},
        {"op": "patch", "type": "daily_log", "id": log_id, "body": {"minutes": 0}},
        {"op": "delete", "type": "weekly_target", "id": target_id},
        {"op": "delete", "type": "weekly_target", "id": target_id},
        {"op": "patch", "type": "goal", "id": goal_id, "body": {"title": "Renamed"}},
    ]
    results = batch(gateway, account, ops)
    assert [x["status"] for x in results] == [404, 201, 201, 200, 201, 200, 422, 204, 404, 200]
    assert results[0]["problem"]["status"] == 404 and "body" not in results[0]
    assert results[3]["etag"] == results[2]["etag"]  # the duplicate wrote nothing
    assert results[5]["body"]["minutes"] == 45 and results[5]["etag"] != results[3]["etag"]
    invalid = results[6]["problem"]
    assert invalid["errors"][0]["loc"][:3] == ["ops", 6, "body"] and "etag" not in results[6]
    assert "problem" not in results[7] and "body" not in results[7]
    # The same as single requests would have left.
    got = gateway.get(f"/daily-logs/{log_id}", headers=account.headers)
    assert got.json()["minutes"] == 45 and got.headers["ETag"] == results[5]["etag"]
    assert_problem(gateway.get(f"/weekly-targets/{target_id}", headers=account.headers), 404)
    assert gateway.get(f"/goals/{goal_id}", headers=account.headers).json()["title"] == "Renamed"
    # Replayed whole (a lost response): nothing changes, the deleted target is 410.
    again = batch(gateway, account, ops)
    assert [x["status"] for x in again] == [200, 200, 200, 200, 410, 200, 422, 404, 404, 200]
    assert gateway.get(f"/daily-logs/{log_id}", headers=account.headers).json()["minutes"] == 45


def test_batch_if_match_and_bad_ops(gateway: httpx.Client, account: Account) -> None:
    goal_id = str(uuid.uuid4())
    created = batch(gateway, account, [{"op": "put", "type": "goal", "id": goal_id,
                                        "body": {"title": "a"}}])  # fmt: skip
    tag = created[0]["etag"]
    results = batch(
        gateway,
        account,
        [
            {"op": "patch", "type": "goal", "id": goal_id, "body": {"title": "b"},
             "if_match": '"stale.1"'},
            {"op": "patch", "type": "goal", "id": goal_id, "body": {"title": "b"},
             "if_match": tag},
            {"op": "delete", "type": "goal", "id": goal_id, "if_match": tag},
            {"op": "delete", "type": "goal", "id": goal_id, "body": {}},
            {"op": "put", "type": "goal", "id": str(uuid.uuid4())},
        ],
    )  # fmt: skip
    assert [x["status"] for x in results] == [412, 200, 412, 422, 422]
    assert str(results[0]["problem"]["type"]).endswith("/precondition-failed")
    for ops in (
        [],
        [{"op": "merge", "type": "goal", "id": goal_id}],
        [{"op": "delete", "type": "break", "id": goal_id}],
        [{"op": "delete", "type": "goal", "id": goal_id, "extra": 1}],
        [{"op": "delete", "type": "goal", "id": goal_id}] * 201,
    ):
        r = gateway.post("/batch", json={"ops": ops}, headers=account.headers)
        assert_problem(r, 422)
    at_most = [{"op": "delete", "type": "goal", "id": str(uuid.uuid4())}] * 200
    assert {x["status"] for x in batch(gateway, account, at_most)} == {404}
