"""The partitioned log end to end on a real 3-master Redis Cluster (P = 8): two analytics
replicas share the partitions, one is killed with SIGKILL in the middle of a burst of
logs written through the gateway, and every user's dashboard still counts each log once.
"""

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from momentum_libs.devstack import Stack
from momentum_libs.partitions import partition_streams
from momentum_libs.redis_client import sync_redis_client
from momentum_libs.testing.plugin import namespaced_stack, new_namespace
from momentum_libs.testing.waiting import eventually_blocking

from .conftest import login, register

P = 8
USERS = 12
LOGS_PER_USER = 20
KILL_AFTER = 80  # writes answered before the second replica is killed


@pytest.fixture(scope="module")
def partitioned_stack(
    tmp_path_factory: pytest.TempPathFactory, mongodb_url: str, redis_cluster_url: str
) -> Iterator[Stack]:
    env = {
        "MOMENTUM_EVENTS_PARTITIONS": str(P),
        # A dead replica's partitions are taken over after this (15 s by default).
        "MOMENTUM_ANALYTICS_CONSUMER_LEASE_MS": "1500",
        "MOMENTUM_TRACKING_CONSUMER_LEASE_MS": "1500",
        "MOMENTUM_GATEWAY_CLIENT_MAX_IN_FLIGHT": "64",
        "MOMENTUM_GATEWAY_RATE_LIMIT_REQUESTS": "1000000",
        "MOMENTUM_AUTH_ARGON2_TIME_COST": "1",
        "MOMENTUM_AUTH_ARGON2_MEMORY_COST_KIB": "8192",
        "MOMENTUM_AUTH_ARGON2_PARALLELISM": "1",
    }
    data_dir = tmp_path_factory.mktemp("partitions")
    with namespaced_stack(
        data_dir, mongodb_url, redis_cluster_url, new_namespace("p"), env
    ) as running:
        yield running


def lease_owners(stack: Stack, group: str) -> list[str | None]:
    client = sync_redis_client(stack.redis_url)
    try:
        keys = [f"{s}.owner.{group}" for s in partition_streams(stack.events_stream, P)]
        return [None if v is None else v.decode() for v in (client.get(k) for k in keys)]
    finally:
        client.close()


def total(gw: httpx.Client, headers: dict[str, str]) -> int:
    return int(gw.get("/analytics/dashboard", headers=headers).json()["total_minutes"])


async def burst(stack: Stack, writes: list[tuple[dict[str, str], dict[str, Any]]]) -> None:
    """Every write at concurrency 16; the second analytics replica is SIGKILLed once
    ``KILL_AFTER`` of them are answered."""
    answered = 0
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:

        async def write(headers: dict[str, str], body: dict[str, Any]) -> None:
            nonlocal answered
            async with gate:
                response = await client.post("/daily-logs", json=body, headers=headers)
            assert response.status_code == 201, response.text
            answered += 1
            if answered == KILL_AFTER:
                await asyncio.to_thread(stack.kill_service, "analytics#2")

        await asyncio.gather(*(write(h, b) for h, b in writes))


def test_two_analytics_replicas_one_killed_mid_burst_count_every_log_once(
    partitioned_stack: Stack,
) -> None:
    stack = partitioned_stack
    stack.start_replica("analytics")
    owners = eventually_blocking(
        lambda: lease_owners(stack, "analytics"),
        lambda found: None not in found and len(set(found)) == 2,
        timeout_s=30,
    )
    assert len(set(owners)) == 2 and None not in owners, owners  # they share the eight
    rng = random.Random(12)
    expected: dict[int, int] = {}
    writes: list[tuple[dict[str, str], dict[str, Any]]] = []
    accounts: list[dict[str, str]] = []
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as gw:
        for u in range(USERS):
            user = register(gw)
            headers = {"Authorization": f"Bearer {login(gw, str(user['email']))['access_token']}"}
            goal = gw.post("/goals", json={"title": f"Goal {u}"}, headers=headers).json()
            accounts.append(headers)
            for _ in range(LOGS_PER_USER):
                minutes = rng.randint(1, 90)
                expected[u] = expected.get(u, 0) + minutes
                body = {"goal_id": goal["id"], "date": date.today().isoformat(), "minutes": minutes}
                writes.append((headers, body))
        rng.shuffle(writes)  # users interleaved, each user's own in their order
        asyncio.run(burst(stack, writes))
        for u, headers in enumerate(accounts):
            seen = eventually_blocking(
                lambda h=headers: total(gw, h), lambda t, u=u: t == expected[u], timeout_s=60
            )
            assert seen == expected[u], (u, seen, expected[u])  # none lost, none twice
    after = lease_owners(stack, "analytics")
    assert None not in after and len(set(after)) == 1, after  # the survivor holds all eight
    client = sync_redis_client(stack.redis_url)
    try:
        partitions = partition_streams(stack.events_stream, P)
        used = [s for s in partitions if client.xlen(s)]
        assert len(used) >= 4, used  # twelve users' events spread over the partitions
        nodes = {client.get_node_from_key(s).name for s in partitions}  # type: ignore[union-attr]
        assert len(nodes) > 1, nodes
    finally:
        client.close()


def _ops(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    tool = str(Path(sys.executable).parent / "momentum-ops")
    env = {**stack.env_for("analytics"), "COLUMNS": "200"}
    return subprocess.run(
        [tool, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_ops_cli_shows_every_partition_and_names_one_for_dead_letters(
    partitioned_stack: Stack,
) -> None:
    done = _ops(partitioned_stack, "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["partitions"] == {"configured": P, "recorded": str(P)}
    names = [s["stream"] for s in status["streams"]]
    assert names[:P] == partition_streams(partitioned_stack.events_stream, P)
    refused = _ops(partitioned_stack, "dead-letters", "list", "analytics")
    assert refused.returncode == 1 and "--partition 0…7" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    listed = _ops(partitioned_stack, "dead-letters", "list", "analytics", "--partition", "3")
    assert listed.returncode == 0 and "0 shown of partition 3" in listed.stdout, listed.stderr
