"""GET /changes (issue 16, item 3) through the gateway: a first full sync in pages, then
every change since a token in one order, deletes included; bad and expired tokens; and
no change skipped while concurrent writers commit out of order."""

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from momentum_libs.clock import utcnow
from momentum_libs.devstack import Stack
from momentum_tracking.changes.schemas import SyncToken
from momentum_tracking.changes.service import encode_token

from .conftest import Account, assert_problem
from .test_tracking_e2e import all_pages, wait_for

MONDAY = "2026-11-16"


class Device:
    """A second device's copy of the user's data, kept by /changes alone."""

    def __init__(self, gw: httpx.Client, account: Account, limit: int = 50) -> None:
        self.gw, self.account, self.limit = gw, account, limit
        self.state: dict[tuple[str, str], dict[str, Any]] = {}
        self.token: str | None = None
        self.seen: set[tuple[str, str]] = set()

    def pull(self) -> "Device":
        """Read pages until has_more is false, applying each item by (type, id)."""
        while True:
            params: dict[str, Any] = {"limit": self.limit}
            if self.token is not None:
                params["since"] = self.token
            r = self.gw.get("/changes", params=params, headers=self.account.headers)
            assert r.status_code == 200, r.text
            page = r.json()
            for item in page["items"]:
                key = (item["type"], item["id"])
                self.seen.add(key)
                if item["op"] == "delete":
                    assert item["data"] is None
                    self.state.pop(key, None)
                else:
                    assert item["data"]["id"] == item["id"]
                    self.state[key] = item["data"]
            self.token = page["next_token"]
            if not page["has_more"]:
                return self

    def of(self, change_type: str) -> dict[str, dict[str, Any]]:
        return {i: data for (t, i), data in self.state.items() if t == change_type}


def server_state(gw: httpx.Client, account: Account) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        change_type: {x["id"]: x for x in all_pages(gw, path, account, limit=200)}
        for change_type, path in (
            ("goal", "/goals"),
            ("weekly_target", "/weekly-targets"),
            ("daily_log", "/daily-logs"),
        )
    }


def in_sync(device: Device, gw: httpx.Client, account: Account) -> bool:
    device.pull()
    return all(device.of(t) == items for t, items in server_state(gw, account).items())


def test_a_first_sync_in_pages_then_every_change_since_its_token(
    gateway: httpx.Client, account: Account
) -> None:
    h = account.headers
    goal = gateway.post("/goals", json={"title": "Posted"}, headers=h).json()
    other = str(uuid.uuid4())
    assert gateway.put(f"/goals/{other}", json={"title": "Put"}, headers=h).status_code == 201
    target = gateway.post(
        "/weekly-targets",
        json={"goal_id": goal["id"], "week_start": MONDAY, "target_minutes": 60},
        headers=h,
    ).json()
    logs = [
        gateway.post(
            "/daily-logs",
            json={"goal_id": gid, "date": "2026-11-20", "minutes": 10 + n},
            headers=h,
        ).json()
        for n, gid in enumerate([goal["id"], other, other])
    ]
    # First sync, two items a page: everything once, then a token.
    device = Device(gateway, account, limit=2).pull()
    assert wait_for(lambda: in_sync(device, gateway, account), bool)
    assert set(device.of("daily_log")) == {x["id"] for x in logs}
    assert set(device.of("goal")) == {goal["id"], other}
    # Changes since its token: an update, a delete, a cascade, one order.
    log_path = f"/daily-logs/{logs[0]['id']}"
    assert gateway.patch(log_path, json={"minutes": 99}, headers=h).status_code == 200
    assert gateway.delete(f"/weekly-targets/{target['id']}", headers=h).status_code == 204
    assert gateway.delete(f"/goals/{other}", headers=h).status_code == 204
    token = device.token

    def changed() -> list[dict[str, Any]]:
        r = gateway.get("/changes", params={"since": token, "limit": 200}, headers=h)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    items = wait_for(changed, lambda found: len(found) == 5)  # log, target, goal, 2 logs
    by_key = {(i["type"], i["id"]): i for i in items}
    assert by_key[("daily_log", logs[0]["id"])]["data"]["minutes"] == 99
    assert by_key[("weekly_target", target["id"])] == {
        **by_key[("weekly_target", target["id"])],
        "op": "delete",
        "data": None,
    }
    assert {k for k, i in by_key.items() if i["op"] == "delete"} == {
        ("weekly_target", target["id"]),
        ("goal", other),
        ("daily_log", logs[1]["id"]),
        ("daily_log", logs[2]["id"]),
    }
    # The log was changed before the target was deleted: that is the feed's order too.
    order = [(i["type"], i["id"]) for i in items]
    assert order.index(("daily_log", logs[0]["id"])) < order.index(("weekly_target", target["id"]))
    assert wait_for(lambda: in_sync(device, gateway, account), bool)
    # Nothing new: no items, and the token stays usable.
    again = gateway.get("/changes", params={"since": device.token}, headers=h).json()
    assert again["items"] == [] and again["has_more"] is False


def test_types_filter_the_feed(gateway: httpx.Client, account: Account) -> None:
    h = account.headers
    goal = gateway.post("/goals", json={"title": "g"}, headers=h).json()
    log = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 5}
    assert gateway.post("/daily-logs", json=log, headers=h).status_code == 201

    def only_logs() -> list[dict[str, Any]]:
        params = {"types": "daily_log"}
        return list(gateway.get("/changes", params=params, headers=h).json()["items"])

    assert [i["type"] for i in wait_for(only_logs, lambda x: len(x) == 1)] == ["daily_log"]
    assert_problem(gateway.get("/changes", params={"types": "goal,nope"}, headers=h), 422)


def test_bad_and_expired_tokens(gateway: httpx.Client, account: Account) -> None:
    h = account.headers
    for bad in ("not-a-token", "e30", encode_token(SyncToken(issued=0))):
        problem = assert_problem(gateway.get("/changes", params={"since": bad}, headers=h), 422)
        assert "since" in str(problem["errors"])
    assert_problem(gateway.get("/changes", params={"limit": 0}, headers=h), 422)
    # Older than the tombstone retention (90 days by default): 410, sync again.
    old = int((utcnow() - timedelta(days=91)).timestamp())
    expired = gateway.get(
        "/changes", params={"since": encode_token(SyncToken(seq=1, issued=old))}, headers=h
    )
    problem = assert_problem(expired, 410)
    assert str(problem["type"]).endswith("/sync-token-expired")
    assert "from scratch" in str(problem["detail"])


def test_no_change_is_skipped_while_concurrent_writers_commit_out_of_order(
    stack: Stack, gateway: httpx.Client, account: Account
) -> None:
    """Eight writers PUT, PATCH and DELETE logs at once while a device follows /changes
    in pages of 3, never starting over: it ends with exactly the server's logs."""
    h = account.headers
    goal = gateway.post("/goals", json={"title": "busy"}, headers=h).json()
    device = Device(gateway, account, limit=3).pull()
    writes_done = threading.Event()

    def writer(n: int) -> int:
        rng, mine = random.Random(n), []
        with httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
            for step in range(25):
                if mine and rng.random() < 0.3:
                    victim = mine.pop(rng.randrange(len(mine)))
                    r = client.delete(f"/daily-logs/{victim}", headers=h)
                    assert r.status_code == 204, r.text
                    continue
                log_id = mine[-1] if mine and rng.random() < 0.3 else str(uuid.uuid4())
                body = {"goal_id": goal["id"], "date": "2026-11-20", "minutes": 1 + n + step}
                r = client.put(f"/daily-logs/{log_id}", json=body, headers=h)
                assert r.status_code in (200, 201), r.text
                if r.status_code == 201:
                    mine.append(log_id)
        return len(mine)

    def follower() -> int:
        pulls = 0
        while not writes_done.is_set():
            device.pull()
            pulls += 1
        return pulls

    with ThreadPoolExecutor(max_workers=9) as pool:
        following = pool.submit(follower)
        kept = sum(f.result() for f in [pool.submit(writer, n) for n in range(8)])
        writes_done.set()
        assert following.result() > 1  # it read while the writes went on
    assert wait_for(lambda: in_sync(device, gateway, account), bool, timeout_s=60)
    assert len(device.of("daily_log")) == kept > 0
