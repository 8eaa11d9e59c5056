"""The tracking → analytics storage contract, end to end: analytics rebuilt from exactly the
documents tracking-service wrote equals the projection its events built live."""

import subprocess
import sys
from typing import Any

import httpx
from momentum_libs.devstack import Stack

from .conftest import Account
from .test_tracking_e2e import create_goal, create_log, wait_for

WEEKS = ("2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16")


def analytics_reads(gw: httpx.Client, account: Account, goal_ids: list[str]) -> dict[str, Any]:
    """Every analytics read of the user, over the weeks the test writes in."""
    h = account.headers
    reads: dict[str, Any] = {
        "dashboard": gw.get("/analytics/dashboard", headers=h).json(),
        "streak": gw.get("/analytics/streak", headers=h).json(),
        "heatmap": gw.get(
            "/analytics/heatmap", params={"from": "2026-10-01", "to": "2026-11-30"}, headers=h
        ).json(),
    }
    for week in WEEKS:
        for goal_id in goal_ids:
            reads[f"week {week} {goal_id}"] = gw.get(
                "/analytics/weekly-summary",
                params={"week_start": week, "goal_id": goal_id},
                headers=h,
            ).json()
    return reads


def rebuild(stack: Stack, user_id: str) -> None:
    env = stack.env_for("analytics")
    env["MOMENTUM_ANALYTICS_TRACKING_MONGODB_DB"] = stack.database("tracking")
    done = subprocess.run(
        [sys.executable, "-m", "momentum_analytics.rebuild.cli", "--user", user_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"users": 1' in done.stdout, done.stdout


def test_a_rebuild_from_trackings_documents_equals_the_live_projection(
    gateway: httpx.Client, account: Account, stack: Stack
) -> None:
    h = account.headers
    main = create_goal(gateway, account, "main")
    side = create_goal(gateway, account, "side")
    doomed = create_goal(gateway, account, "doomed")
    targets = {}
    for week in WEEKS[1:]:
        for goal in (main, side, doomed):
            r = gateway.post(
                "/weekly-targets",
                json={"goal_id": goal["id"], "week_start": week, "target_minutes": 300},
                headers=h,
            )
            assert r.status_code == 201, r.text
            targets[(goal["id"], week)] = r.json()
    logs = [
        create_log(gateway, account, goal["id"], day, minutes)
        for goal, day, minutes in [
            (main, "2026-10-28", 30),
            (main, "2026-11-03", 45),
            (side, "2026-11-03", 15),
            (main, "2026-11-04", 60),
            (doomed, "2026-11-05", 90),
            (side, "2026-11-10", 20),
            (main, "2026-11-17", 25),
            (doomed, "2026-11-18", 35),
        ]
    ]
    # Moves across days, months and goals; changes; deletions of each kind.
    moves: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (logs[0], {"date": "2026-11-11"}),
        (logs[1], {"goal_id": side["id"], "minutes": 50}),
        (logs[5], {"date": "2026-10-30", "goal_id": main["id"]}),
    ]
    for log, change in moves:
        r = gateway.patch(f"/daily-logs/{log['id']}", json=change, headers=h)
        assert r.status_code == 200, r.text
    assert gateway.delete(f"/daily-logs/{logs[3]['id']}", headers=h).status_code == 204
    target = targets[(main["id"], WEEKS[2])]
    r = gateway.patch(f"/weekly-targets/{target['id']}", json={"target_minutes": 90}, headers=h)
    assert r.status_code == 200, r.text
    gone = targets[(side["id"], WEEKS[3])]
    assert gateway.delete(f"/weekly-targets/{gone['id']}", headers=h).status_code == 204
    assert gateway.delete(f"/goals/{doomed['id']}", headers=h).status_code == 204
    assert gateway.patch(f"/goals/{side['id']}/activate", headers=h).status_code == 200

    goal_ids = [main["id"], side["id"]]
    # Live: wait until the events are applied (the summed minutes of what remains).
    expected_total = 50 + 15 + 20 + 25 + 30
    wait_for(
        lambda: analytics_reads(gateway, account, goal_ids),
        lambda reads: (
            reads["dashboard"]["total_minutes"] == expected_total
            and reads["heatmap"]["days"][34]["minutes"] == 0  # 2026-11-04, its log deleted
            and reads["dashboard"]["pending"] is False  # the activation applied too
        ),
        timeout_s=30,
    )
    live = wait_for(
        lambda: analytics_reads(gateway, account, goal_ids),
        lambda reads: reads == analytics_reads(gateway, account, goal_ids),
    )
    assert live["dashboard"]["total_minutes"] == expected_total

    rebuild(stack, str(account.user["id"]))
    assert analytics_reads(gateway, account, goal_ids) == live
