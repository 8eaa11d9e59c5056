"""The main flows on both Redis modes: the single node and a real 3-master Redis Cluster.

One stack per mode (module-scoped), each with its own namespace: register, login,
throttling, logout revocation, logs → analytics, dead-lettering and replay through
``momentum-ops``. On the cluster, the rate windows are counted in Redis too (limits'
cluster storage), and the test checks the keys really are spread over the masters.
"""

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from momentum_libs.devstack import Stack
from momentum_libs.events import DEAD_ENTRY_ID, Envelope, EventType, LogPayload
from momentum_libs.redis_client import sync_redis_client
from momentum_libs.redis_urls import is_cluster_url
from momentum_libs.testing.plugin import namespaced_stack, new_namespace
from momentum_libs.testing.waiting import eventually_blocking

from .conftest import PASSWORD, assert_problem, login, register

MODES = ["single", "cluster"]
SESSIONS = 7


@pytest.fixture(scope="module", params=MODES)
def mode_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mongodb_url: str,
    redis_url: str,
) -> Iterator[Stack]:
    url = redis_url if request.param == "single" else request.getfixturevalue("redis_cluster_url")
    env = {
        "MOMENTUM_GATEWAY_RATE_LIMIT_STORAGE": "redis",
        # The logins below come from one address all at once: the throttle's business here.
        "MOMENTUM_GATEWAY_CLIENT_MAX_IN_FLIGHT": "32",
        "MOMENTUM_GATEWAY_CLIENT_MAX_QUEUED": "32",
    }
    data_dir = tmp_path_factory.mktemp(f"redis-{request.param}")
    with namespaced_stack(data_dir, mongodb_url, url, new_namespace("r"), env) as running:
        yield running


@pytest.fixture
def gw(mode_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mode_stack.gateway_url, timeout=30) as client:
        yield client


def wait_for(probe: Any, done: Any) -> Any:
    return eventually_blocking(probe, done, timeout_s=30)


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _at_once(base_url: str, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        return list(await asyncio.gather(*(client.post("/auth/login", json=b) for b in bodies)))


def logins_at_once(stack: Stack, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    return asyncio.run(_at_once(stack.gateway_url, bodies))


def masters(client: "redis.Redis | redis.RedisCluster") -> list[redis.Redis]:
    """One client per master: the cluster's primaries, or the single node itself."""
    if isinstance(client, redis.RedisCluster):
        return [client.get_redis_connection(node) for node in client.get_primaries()]
    return [client]


def test_the_stack_runs_on_the_redis_of_its_mode(mode_stack: Stack) -> None:
    client = sync_redis_client(mode_stack.redis_url)
    try:
        enabled = [node.info("cluster")["cluster_enabled"] for node in masters(client)]
    finally:
        client.close()
    assert enabled == ([1, 1, 1] if is_cluster_url(mode_stack.redis_url) else [0])


def test_parallel_logins_all_succeed_and_every_session_is_served(
    mode_stack: Stack, gw: httpx.Client
) -> None:
    email = str(register(gw)["email"])
    responses = logins_at_once(mode_stack, [{"email": email, "password": PASSWORD}] * 30)
    assert [r.status_code for r in responses] == [200] * 30, [r.text for r in responses]
    # Sessions' revocation keys land in different slots: each is checked on its own node.
    for response in responses[:SESSIONS]:
        for _ in range(3):
            me = gw.get("/auth/me", headers=bearer(response.json()))
            assert me.status_code == 200, me.text
            # The window is counted in this mode's Redis (a store failure lets the
            # request through without it).
            assert '"window";r=' in me.headers["RateLimit"], me.headers["RateLimit"]


def test_wrong_logins_lock_the_email_exactly(mode_stack: Stack, gw: httpx.Client) -> None:
    email = str(register(gw)["email"])
    wrong = [{"email": email, "password": "wrong guess"}] * 20
    statuses = sorted(r.status_code for r in logins_at_once(mode_stack, wrong))
    # More than 10 failures lock: 11 are judged, the 9 others refused.
    assert statuses == [401] * 11 + [429] * 9
    locked = gw.post("/auth/login", json={"email": email, "password": PASSWORD})
    problem = assert_problem(locked, 429)
    assert str(problem["type"]).endswith("/too-many-login-failures")


def test_logout_revokes_its_session_at_once(gw: httpx.Client) -> None:
    email = str(register(gw)["email"])
    sessions = [login(gw, email) for _ in range(SESSIONS)]
    ended = sessions[0]
    response = gw.post(
        "/auth/logout", json={"refresh_token": ended["refresh_token"]}, headers=bearer(ended)
    )
    assert response.status_code == 204, response.text
    assert_problem(gw.get("/auth/me", headers=bearer(ended)), 401)
    for other in sessions[1:]:
        assert gw.get("/auth/me", headers=bearer(other)).status_code == 200


def _account(gw: httpx.Client) -> tuple[str, dict[str, str]]:
    user = register(gw)
    return str(user["id"]), bearer(login(gw, str(user["email"])))


def _total(gw: httpx.Client, headers: dict[str, str]) -> int:
    return int(gw.get("/analytics/dashboard", headers=headers).json()["total_minutes"])


def test_logs_reach_analytics(gw: httpx.Client) -> None:
    _, headers = _account(gw)
    goal = gw.post("/goals", json={"title": "Run"}, headers=headers).json()
    today = date.today().isoformat()
    for minutes in (20, 25):
        body = {"goal_id": goal["id"], "date": today, "minutes": minutes}
        assert gw.post("/daily-logs", json=body, headers=headers).status_code == 201
    assert wait_for(lambda: _total(gw, headers), lambda t: t == 45) == 45


def _ops(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**stack.env_for("analytics"), "COLUMNS": "200"}
    tool = str(Path(sys.executable).parent / "momentum-ops")
    done = subprocess.run(
        [tool, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done


def test_a_bad_entry_is_dead_lettered_and_a_dead_letter_replayed(
    mode_stack: Stack, gw: httpx.Client
) -> None:
    user_id, headers = _account(gw)
    goal = gw.post("/goals", json={"title": "Read"}, headers=headers).json()
    client = sync_redis_client(mode_stack.redis_url)
    stream = mode_stack.events_stream
    try:
        # Not an event: each group moves it, in one MULTI with its XACK, to its dead
        # letters (same slot as the stream: the hash tag).
        planted = client.xadd(stream, {"not": "an event"}).decode()

        def dead_ids(group: str) -> list[str]:
            entries: Any = client.xrange(f"{stream}.dead.{group}")
            return [f[DEAD_ENTRY_ID.encode()].decode() for _, f in entries]

        for group in ("analytics", "tracking"):
            assert planted in wait_for(lambda g=group: dead_ids(g), lambda ids: planted in ids)
        # A log analytics never applied, as its consumer would have dead-lettered it:
        # replayed by the CLI to analytics alone, then applied.
        event = Envelope.create(
            EventType.LOG_CREATED,
            user_id,
            LogPayload(
                log_id=uuid.uuid4().hex[:24],
                goal_id=goal["id"],
                date=date.today(),
                minutes=7,
                version=1,
            ),
        )
        dead_id = client.xadd(f"{stream}.dead.analytics", event.to_stream_fields()).decode()
    finally:
        client.close()
    _ops(mode_stack, "dead-letters", "replay", "analytics", dead_id)
    assert wait_for(lambda: _total(gw, headers), lambda t: t == 7) == 7
    status = _ops(mode_stack, "status").stdout
    assert "dead letters of analytics" in status, status


def test_the_keys_are_spread_over_every_master_of_the_mode(
    mode_stack: Stack, gw: httpx.Client
) -> None:
    """The cluster's flows touch several masters (or they prove nothing). The event log
    and all kept beside it share one slot, so the spread comes from the per-user keys:
    eight users' requests now (their rate windows live a minute, so the flows above may
    have left none by this test), each user's key on a master of its own hash: all eight
    on one master is a chance of 3 * 3**-8 (0.05 %)."""
    for _ in range(8):
        _, headers = _account(gw)
        assert gw.get("/auth/me", headers=headers).status_code == 200
    client = sync_redis_client(mode_stack.redis_url)
    try:
        nodes = masters(client)
        # The stack's keys: all of them start with its namespace.
        match = f"{mode_stack.namespace}*"
        holders = sum(any(True for _ in node.scan_iter(match=match, count=1000)) for node in nodes)
    finally:
        client.close()
    if is_cluster_url(mode_stack.redis_url):
        assert (len(nodes), holders >= 2) == (3, True), holders
    else:
        assert (len(nodes), holders) == (1, 1)
