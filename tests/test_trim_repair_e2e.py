"""A consumer stopped past the retention window: what was trimmed unread is repaired.

A stack of its own with a tiny hard cap: analytics is killed, writes go on until the
relays' cap trims entries the analytics group never read, and analytics comes back.
Without an operator its projections equal a recomputation from tracking's data.
"""

import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from momentum_libs.devstack import Stack
from momentum_libs.redis_client import sync_redis_client
from momentum_libs.retention import trimmed_unread_key
from momentum_libs.testing.plugin import namespaced_stack, new_namespace

from .conftest import Account, new_account
from .test_rebuild_contract import analytics_reads
from .test_tracking_e2e import all_pages, create_goal, create_log, wait_for

CAP = 20


@pytest.fixture(scope="module", params=["single", "cluster"])
def capped_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mongodb_url: str,
    redis_url: str,
) -> Iterator[Stack]:
    """On one Redis and on a 3-master Redis Cluster (issue 12, item 8)."""
    url = redis_url if request.param == "single" else request.getfixturevalue("redis_cluster_url")
    env = {
        f"MOMENTUM_{service}_{name}": value
        for service in ("AUTH", "TRACKING")
        for name, value in (
            ("EVENTS_MAXLEN", str(CAP)),
            ("EVENTS_RETENTION_S", "1"),
            ("EVENTS_RETENTION_INTERVAL_S", "0.2"),
        )
    }
    env["MOMENTUM_GATEWAY_RATE_LIMIT_REQUESTS"] = "0"  # the waits below poll the reads
    data_dir = tmp_path_factory.mktemp(f"capped-stack-{request.param}")
    with namespaced_stack(data_dir, mongodb_url, url, new_namespace("r"), env) as running:
        yield running


def recorded_windows(stack: Stack) -> list[str]:
    client = sync_redis_client(stack.redis_url)
    try:
        keys: Any = client.hkeys(trimmed_unread_key(stack.events_stream))
        return sorted(key.decode() for key in keys)
    finally:
        client.close()


def minutes_by_day(gw: httpx.Client, account: Account) -> dict[str, int]:
    """What tracking holds: the truth the heatmap must show."""
    days: dict[str, int] = defaultdict(int)
    for log in all_pages(gw, "/daily-logs", account):
        days[log["date"]] += log["minutes"]
    return dict(days)


def heatmap_days(reads: dict[str, Any]) -> dict[str, int]:
    return {d["date"]: d["minutes"] for d in reads["heatmap"]["days"] if d["minutes"]}


def settled(reads: dict[str, Any]) -> bool:
    """No event is waiting for the analytics group (every read says so)."""
    return not any(read.get("pending") for read in reads.values())


def projection(reads: dict[str, Any]) -> dict[str, Any]:
    """The reads without their freshness (``as_of`` moves with the clock)."""
    return {name: {k: v for k, v in read.items() if k != "as_of"} for name, read in reads.items()}


def rebuild(stack: Stack, user_id: str, data_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "momentum_analytics.rebuild.cli", "--user", user_id],
        env=stack.env_for("analytics"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_consumer_back_after_its_unread_events_were_trimmed_is_repaired(
    capped_stack: Stack, tmp_path: Path
) -> None:
    with httpx.Client(base_url=capped_stack.gateway_url, timeout=15) as gw:
        account = new_account(gw)
        goal = create_goal(gw, account, "main")
        first = [create_log(gw, account, goal["id"], f"2026-11-{d:02d}", 10) for d in (1, 2)]
        wait_for(
            lambda: analytics_reads(gw, account, [goal["id"]]),
            lambda reads: heatmap_days(reads) == {"2026-11-01": 10, "2026-11-02": 10},
        )

        capped_stack.kill_service("analytics")  # stopped: its group reads nothing more
        written = [
            create_log(gw, account, goal["id"], f"2026-10-{1 + i % 28:02d}", 5 + i)
            for i in range(3 * CAP)
        ]
        r = gw.patch(f"/daily-logs/{first[0]['id']}", json={"minutes": 45}, headers=account.headers)
        assert r.status_code == 200, r.text
        assert (
            gw.delete(f"/daily-logs/{written[0]['id']}", headers=account.headers).status_code == 204
        )
        # The relays' cap cut into what the stopped analytics group had not read.
        wait_for(
            lambda: recorded_windows(capped_stack),
            lambda found: any(w.startswith("analytics ") for w in found),
        )

        capped_stack.start_service("analytics")
        truth = minutes_by_day(gw, account)
        reads = wait_for(
            lambda: analytics_reads(gw, account, [goal["id"]]),
            lambda found: (
                settled(found)
                and heatmap_days(found) == truth
                and not recorded_windows(capped_stack)
            ),
            timeout_s=60,
        )
        assert reads["heatmap"]["days"][0]["date"] == "2026-10-01"

        # A recomputation of the user from tracking's data changes nothing.
        rebuild(capped_stack, str(account.user["id"]), tmp_path)
        assert projection(analytics_reads(gw, account, [goal["id"]])) == projection(reads)
