"""Deleting a goal while clients keep writing to it: a prompt 204, and nothing left behind."""

import threading
import time
from typing import Any

import httpx
from momentum_libs.devstack import Stack

from .conftest import Account
from .test_tracking_e2e import all_pages, create_goal, create_log, wait_for

WRITERS = 8
DAY = "2026-11-20"


def keep_logging(stack: Stack, account: Account, goal_id: str, tally: dict[str, int]) -> None:
    """Log on the goal until it answers 404 (the goal is gone), counting what went in."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        for _ in range(5000):  # bounded: the goal is deleted long before
            r = client.post(
                "/daily-logs",
                json={"goal_id": goal_id, "date": DAY, "minutes": 1},
                headers=account.headers,
            )
            if r.status_code == 404:
                return
            assert r.status_code == 201, r.text
            tally[threading.current_thread().name] = (
                tally.get(threading.current_thread().name, 0) + 1
            )


def analytics_minutes(gw: httpx.Client, account: Account) -> tuple[int, int]:
    total = gw.get("/analytics/dashboard", headers=account.headers).json()["total_minutes"]
    heatmap = gw.get(
        "/analytics/heatmap", params={"from": DAY, "to": DAY}, headers=account.headers
    ).json()
    return int(total), int(heatmap["days"][0]["minutes"])


def test_a_goal_deleted_under_8_writers_answers_204_and_leaves_nothing(
    gateway: httpx.Client, account: Account, stack: Stack
) -> None:
    kept = create_goal(gateway, account, "kept")
    create_log(gateway, account, kept["id"], DAY, minutes=45)
    doomed = create_goal(gateway, account, "doomed")
    for week in ("2026-11-02", "2026-11-09", "2026-11-16"):
        r = gateway.post(
            "/weekly-targets",
            json={"goal_id": doomed["id"], "week_start": week, "target_minutes": 120},
            headers=account.headers,
        )
        assert r.status_code == 201, r.text

    tally: dict[str, int] = {}
    writers = [
        threading.Thread(
            target=keep_logging, args=(stack, account, doomed["id"], tally), name=f"w{i}"
        )
        for i in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    wait_for(lambda: sum(tally.values()), lambda n: n >= 10 * WRITERS, timeout_s=60)
    assert sum(tally.values()) >= 10 * WRITERS, "the writers never got going"

    started = time.perf_counter()
    deleted = gateway.delete(f"/goals/{doomed['id']}", headers=account.headers)
    took = time.perf_counter() - started
    for writer in writers:
        writer.join(timeout=60)
    print(f"DELETE /goals with {WRITERS} writers: {took * 1000:.0f} ms, {sum(tally.values())} logs")

    assert deleted.status_code == 204, deleted.text
    assert not any(writer.is_alive() for writer in writers), "a writer never saw the 404"
    assert gateway.get(f"/goals/{doomed['id']}", headers=account.headers).status_code == 404
    logs: list[dict[str, Any]] = all_pages(gateway, "/daily-logs", account, limit=200)
    assert [log["goal_id"] for log in logs] == [kept["id"]], "an orphan log of the deleted goal"
    targets = all_pages(gateway, "/weekly-targets", account, limit=200)
    assert targets == []
    # Analytics ends with the kept goal's minutes only, on every read.
    assert wait_for(lambda: analytics_minutes(gateway, account), lambda m: m == (45, 45)) == (
        45,
        45,
    )
