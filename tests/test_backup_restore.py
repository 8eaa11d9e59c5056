"""The embedded stack's backup path of docs/operations.md, step by step, with the stack runner:
stop, back up the data dir, wipe it, restore, start, rebuild: the same users, goals, logs
and analytics."""

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from momentum_libs.devstack import Stack, write_stack_env
from momentum_libs.testing.plugin import CHEAP_PASSWORD_HASHING, drop_namespace

from .conftest import PASSWORD, Account, login, new_account
from .test_tracking_e2e import all_pages, create_goal, create_log, wait_for

FRESHNESS = ("as_of", "pending")  # when analytics last heard of the user: not data


def ops(data_dir: Path, *args: str) -> str:
    """``momentum-ops`` as the runbook runs it: it knows only the data dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MOMENTUM_") and k not in ("MONGODB_URL", "REDIS_URL")
    }
    env["MOMENTUM_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "momentum_ops", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def fill(gw: httpx.Client, account: Account, minutes: int) -> None:
    goal = create_goal(gw, account, f"goal of {account.email}")
    for day, m in (("2026-11-02", minutes), ("2026-11-03", minutes + 1)):
        create_log(gw, account, goal["id"], day, m)
    total = 2 * minutes + 1
    wait_for(
        lambda: gw.get("/analytics/dashboard", headers=account.headers).json(),
        lambda dashboard: dashboard.get("total_minutes") == total,
    )


def everything_of(gw: httpx.Client, account: Account) -> dict[str, Any]:
    h = account.headers
    reads = {
        "me": gw.get("/users/me", headers=h).json(),
        "goals": all_pages(gw, "/goals", account),
        "logs": all_pages(gw, "/daily-logs", account),
        "dashboard": gw.get("/analytics/dashboard", headers=h).json(),
        "heatmap": gw.get(
            "/analytics/heatmap", params={"from": "2026-11-01", "to": "2026-11-30"}, headers=h
        ).json(),
    }
    for read in ("dashboard", "heatmap"):
        for field in FRESHNESS:
            reads[read].pop(field, None)
    return reads


def signed_in_again(gw: httpx.Client, account: Account) -> Account:
    tokens = login(gw, account.email, PASSWORD)
    return Account(
        account.email, PASSWORD, account.user, tokens["access_token"], tokens["refresh_token"]
    )


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Any:
    """The stack on the embedded MongoDB with its data in the data dir, as `make up` runs."""
    monkeypatch.delenv("MONGODB_URL", raising=False)
    namespace = f"b{uuid.uuid4().hex[:10]}_"
    yield lambda data_dir: Stack(
        data_dir, namespace=namespace, redis_url=redis_url, extra_env=dict(CHEAP_PASSWORD_HASHING)
    )
    drop_namespace(redis_url, namespace)


def test_stop_back_up_wipe_restore_start_rebuild_gives_back_the_same_data(
    tmp_path: Path, embedded: Any, redis_url: str
) -> None:
    data_dir, backup = tmp_path / "data", tmp_path / "backup"
    with embedded(data_dir) as stack, httpx.Client(base_url=stack.gateway_url) as gw:
        accounts = [new_account(gw), new_account(gw, timezone="Pacific/Auckland")]
        for n, account in enumerate(accounts):
            fill(gw, account, minutes=30 + n)
        before = {a.email: everything_of(gw, a) for a in accounts}
        namespace = stack.namespace
    # Stopped. Back up, lose the data dir and Redis (`make up`'s Redis keeps nothing).
    assert "mongodb" in ops(data_dir, "backup", str(backup))
    shutil.rmtree(data_dir)
    drop_namespace(redis_url, namespace)
    assert "mongodb" in ops(data_dir, "restore", str(backup))

    with embedded(data_dir) as stack, httpx.Client(base_url=stack.gateway_url) as gw:
        write_stack_env(stack)  # as `make up` does
        rebuilt = ops(data_dir, "analytics-rebuild", "--all")
        assert '"users": 2' in rebuilt
        after = {a.email: everything_of(gw, signed_in_again(gw, a)) for a in accounts}
    assert after == before
    assert all(read["dashboard"]["total_minutes"] > 0 for read in after.values())
