"""Faults injected for real into a private stack: a service killed, Redis down, MongoDB restarted.

Each test leaves the stack as it found it (every store and service up), and asserts that
no service process was restarted behind our back: the pids before and after are equal.
"""

import functools
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from momentum_libs.stores import redis_answers

from ..conftest import Account, assert_problem, new_account
from .conftest import CLIENT_TIMEOUT_S, OwnStack, all_pages, create_goal, today, wait_for

SERVICE_ROUTES: dict[str, tuple[str, str]] = {
    # service → (a route it answers, needing a token, and one needing none)
    "auth": ("/users/me", "/auth/login"),
    "tracking": ("/goals", "/daily-logs"),
    "analytics": ("/analytics/dashboard", "/analytics/streak"),
}


def _health(client: httpx.Client) -> httpx.Response:
    return client.get("/health")


def _healthy(client: httpx.Client) -> Callable[[], bool | None]:
    """A probe for wait_for: True once GET /health answers 200."""
    return lambda: _health(client).status_code == 200 or None


def _assert_works(client: httpx.Client, account: Account, except_: str | None = None) -> None:
    """Every service answers a real request (except ``except_``)."""
    if except_ != "auth":
        me = client.get("/users/me", headers=account.headers)
        assert me.status_code == 200, me.text
    if except_ != "tracking":
        goals = client.get("/goals", headers=account.headers)
        assert goals.status_code == 200, goals.text
    if except_ != "analytics":
        dash = client.get("/analytics/dashboard", headers=account.headers)
        assert dash.status_code == 200, dash.text


@pytest.mark.parametrize("name", ["auth", "tracking", "analytics"])
def test_a_killed_service_fails_only_its_routes_and_comes_back(
    own_stack: OwnStack, own_gateway: httpx.Client, name: str
) -> None:
    account = new_account(own_gateway)
    create_goal(own_gateway, account)
    _assert_works(own_gateway, account)
    others = {n: pid for n, pid in own_stack.service_pids().items() if n != name}

    own_stack.stack.kill_service(name)  # SIGKILL: no goodbye, connections just die
    try:
        for path in SERVICE_ROUTES[name]:
            for _ in range(2):  # the first may meet a pooled connection that died (502)
                response = own_gateway.get(path, headers=account.headers)
                assert response.status_code in (502, 503), (path, response.text)
                assert_problem(response, response.status_code)
        if name == "auth":
            login = own_gateway.post(
                "/auth/login", json={"email": account.email, "password": account.password}
            )
            assert_problem(login, 503)
            assert login.headers["Retry-After"]
        # Only that service's routes fail: the others still serve (tokens still verify).
        _assert_works(own_gateway, account, except_=name)
        health = _health(own_gateway)
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "degraded"
        assert body["services"] == {
            n: ("down" if n == name else "ok") for n in ("auth", "tracking", "analytics")
        }
        db = own_gateway.get("/health/db")
        assert db.status_code == 200, db.text  # the stores are fine
    finally:
        own_stack.stack.start_service(name)

    wait_for("the gateway to find every service up", _healthy(own_gateway))
    _assert_works(own_gateway, account)
    # Writes through the restarted service work, and a new account works end to end.
    fresh = new_account(own_gateway)
    create_goal(own_gateway, fresh)
    _assert_works(own_gateway, fresh)
    assert {n: pid for n, pid in own_stack.service_pids().items() if n != name} == others


def test_a_hung_service_times_out_at_the_gateway_and_the_others_serve(
    own_stack: OwnStack, own_gateway: httpx.Client
) -> None:
    """SIGSTOP tracking: it accepts connections and never answers. Nothing hangs."""
    account = new_account(own_gateway)
    goal_id = create_goal(own_gateway, account)
    pids = own_stack.service_pids()
    tracking = own_stack.stack.services["tracking"]
    tracking.signal(signal.SIGSTOP)
    try:
        # The client waits longer than the gateway's 15 s upstream read timeout: a 504
        # problem is the gateway giving up in time, an httpx timeout here a hang.
        hung = own_gateway.get(f"/goals/{goal_id}", headers=account.headers)
        assert_problem(hung, 504)
        health = own_gateway.get("/health")
        assert health.status_code == 503
        assert health.json()["services"] == {"auth": "ok", "tracking": "down", "analytics": "ok"}
        _assert_works(own_gateway, account, except_="tracking")
    finally:
        tracking.signal(signal.SIGCONT)
    wait_for(
        "tracking to answer again",
        lambda: own_gateway.get("/goals", headers=account.headers).status_code == 200 or None,
    )
    wait_for("the gateway to find every service up", _healthy(own_gateway))
    assert own_stack.service_pids() == pids


@dataclass
class WriterLog:
    created: dict[str, int] = field(default_factory=dict)  # log id → minutes (2xx answers)
    statuses: dict[int, int] = field(default_factory=dict)
    unavailable: list[httpx.Response] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _writer(
    base_url: str, account: Account, goal_id: str, stop: threading.Event, out: WriterLog
) -> None:
    """Keeps logging minutes; a 503/409 is retried with the same Idempotency-Key."""
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        n = 0
        while not stop.is_set():
            n += 1
            key = uuid.uuid4().hex
            body = {"goal_id": goal_id, "date": today().isoformat(), "minutes": 1 + n % 7}
            while True:
                try:
                    response = client.post(
                        "/daily-logs",
                        json=body,
                        headers={**account.headers, "Idempotency-Key": key},
                    )
                except httpx.TimeoutException as exc:  # a hang: the test fails
                    out.errors.append(f"request hung past {CLIENT_TIMEOUT_S}s: {exc!r}")
                    return
                except httpx.HTTPError as exc:
                    out.errors.append(f"transport error at the gateway: {exc!r}")
                    return
                out.statuses[response.status_code] = out.statuses.get(response.status_code, 0) + 1
                if response.status_code == 201:
                    out.created[response.json()["id"]] = int(body["minutes"])  # type: ignore[call-overload]
                    break
                if response.status_code in (503, 409):
                    if response.status_code == 503:
                        out.unavailable.append(response)
                    time.sleep(0.3)  # Retry-After says 5; we retry sooner to keep the test short
                    continue
                out.errors.append(f"unexpected {response.status_code}: {response.text}")
                return
            time.sleep(0.05)


def _total_is(client: httpx.Client, account: Account, expected: int) -> bool | None:
    return _analytics_total(client, account) == expected or None


def _analytics_total(client: httpx.Client, account: Account) -> int:
    response = client.get("/analytics/dashboard", headers=account.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["total_minutes"])


def test_redis_down_fails_closed_and_loses_no_acknowledged_write(
    own_stack: OwnStack, own_gateway: httpx.Client
) -> None:
    writers = 4
    accounts = [new_account(own_gateway) for _ in range(writers)]
    goals = [create_goal(own_gateway, account) for account in accounts]
    pids = own_stack.service_pids()
    outs = [WriterLog() for _ in accounts]
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_writer,
            args=(own_stack.stack.gateway_url, account, goal, stop, out),
            daemon=True,
        )
        for account, goal, out in zip(accounts, goals, outs, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for("writes before the outage", lambda: all(o.created for o in outs) or None)
        own_stack.redis.stop()
        outage_started = time.monotonic()
        try:
            # During the outage: a token cannot be checked against revocations, so the edge
            # fails closed with 503 + Retry-After (never 401: the token may be fine).
            me = own_gateway.get("/users/me", headers=accounts[0].headers)
            assert_problem(me, 503)
            assert int(me.headers["Retry-After"]) > 0
            db = own_gateway.get("/health/db")
            assert db.status_code == 503
            assert db.json() == {"status": "degraded", "mongodb": "ok", "redis": "down"}
            time.sleep(max(0.0, 10.0 - (time.monotonic() - outage_started)))
        finally:
            own_stack.redis.start()
        wait_for("Redis to answer", lambda: redis_answers(own_stack.redis.url) or None)
        # Redis is back: from the first request on, every service serves (login included),
        # without a restart and without a single 503 for a connection the restart closed.
        _all_serve(own_gateway, accounts[0])
        wait_for(
            "writes after the outage",
            lambda: (
                all(o.statuses.get(201, 0) > 0 for o in outs)
                and (sum(len(o.created) for o in outs) > 0 or None)
            ),
        )
        counts_after = [len(o.created) for o in outs]
        wait_for(
            "each writer to get more 201s after Redis came back",
            lambda: (
                all(len(o.created) >= c + 3 for o, c in zip(outs, counts_after, strict=True))
                or None
            ),
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT_S * 2)
    assert not any(thread.is_alive() for thread in threads)
    assert [o.errors for o in outs] == [[] for _ in outs]
    unavailable = [r for o in outs for r in o.unavailable]
    assert unavailable, "no write met the outage"
    for response in unavailable:
        assert_problem(response, 503)
        assert response.headers.get("Retry-After")

    # Every acknowledged write is stored once (retries with the same key stored nothing new)
    # and reaches analytics.
    for account, out in zip(accounts, outs, strict=True):
        stored = all_pages(own_gateway, "/daily-logs", account.headers)
        assert sorted(str(item["id"]) for item in stored) == sorted(out.created)
        expected = sum(out.created.values())
        wait_for(
            f"analytics total {expected}",
            functools.partial(_total_is, own_gateway, account, expected),
            timeout_s=60,
        )
    assert own_stack.service_pids() == pids  # nothing was restarted
    assert own_gateway.get("/health/db").status_code == 200


def _all_serve(client: httpx.Client, account: Account, width: int = 8) -> None:
    """A burst of logins and reads of each service, all 200.

    A burst, not one request: each service holds a pool of Redis connections, and
    every one the restart closed must be replaced on its next use, not fail it.
    """

    def calls() -> list[httpx.Response]:
        return [
            client.post("/auth/login", json={"email": account.email, "password": account.password}),
            client.get("/users/me", headers=account.headers),
            client.get("/goals", headers=account.headers),
            client.get("/analytics/streak", headers=account.headers),
        ]

    with ThreadPoolExecutor(width) as pool:
        responses = [r for batch in pool.map(lambda _: calls(), range(width)) for r in batch]
    for response in responses:
        assert response.status_code == 200, (response.request.url.path, response.text)


def test_mongodb_restart_answers_503_then_recovers_with_all_data(
    own_stack: OwnStack, own_gateway: httpx.Client
) -> None:
    account = new_account(own_gateway)
    goal_id = create_goal(own_gateway, account)
    before: dict[str, int] = {}
    for minutes in (15, 25, 35):
        response = own_gateway.post(
            "/daily-logs",
            json={"goal_id": goal_id, "date": today().isoformat(), "minutes": minutes},
            headers=account.headers,
        )
        assert response.status_code == 201, response.text
        before[response.json()["id"]] = minutes
    wait_for(
        "analytics before the restart",
        lambda: _analytics_total(own_gateway, account) == sum(before.values()) or None,
    )
    pids = own_stack.service_pids()
    retried_key = uuid.uuid4().hex
    retried_body = {"goal_id": goal_id, "date": today().isoformat(), "minutes": 45}

    own_stack.mongo.stop()
    try:
        outage: list[httpx.Response] = [
            own_gateway.get("/goals", headers=account.headers),
            own_gateway.get(f"/goals/{goal_id}", headers=account.headers),
            own_gateway.get("/daily-logs", headers=account.headers),
            own_gateway.post(
                "/daily-logs",
                json=retried_body,
                headers={**account.headers, "Idempotency-Key": retried_key},
            ),
            own_gateway.post("/goals", json={"title": "during"}, headers=account.headers),
            own_gateway.get("/users/me", headers=account.headers),
            own_gateway.post(
                "/auth/login", json={"email": account.email, "password": account.password}
            ),
            own_gateway.post(
                "/auth/register",
                json={"email": f"o-{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12},
            ),
            own_gateway.get("/analytics/dashboard", headers=account.headers),
            own_gateway.get("/analytics/streak", headers=account.headers),
        ]
        statuses = [(r.request.method, r.request.url.path, r.status_code) for r in outage]
        assert all(status == 503 for *_, status in statuses), statuses
        for response in outage:
            body = assert_problem(response, 503)
            assert "mongo" not in str(body).lower() and "127.0.0.1" not in str(body)
        db = own_gateway.get("/health/db")
        assert db.status_code == 503
        assert db.json()["mongodb"] == "down"
    finally:
        own_stack.mongo.start()

    wait_for(
        "tracking to serve again",
        lambda: own_gateway.get("/goals", headers=account.headers).status_code == 200 or None,
    )
    # auth's MongoDB client reconnects on its own next operation, not with tracking's.
    wait_for(
        "auth to serve again",
        lambda: own_gateway.get("/users/me", headers=account.headers).status_code == 200 or None,
    )
    # No data lost, the idempotent retry of the failed write now succeeds once.
    stored = all_pages(own_gateway, "/daily-logs", account.headers)
    assert {str(item["id"]): item["minutes"] for item in stored} == before
    for _ in range(2):
        retried = own_gateway.post(
            "/daily-logs",
            json=retried_body,
            headers={**account.headers, "Idempotency-Key": retried_key},
        )
        assert retried.status_code == 201, retried.text
    after = all_pages(own_gateway, "/daily-logs", account.headers)
    assert len(after) == len(before) + 1
    me = own_gateway.get("/users/me", headers=account.headers)
    assert me.status_code == 200, me.text
    assert new_account(own_gateway).access_token
    total = sum(before.values()) + 45
    wait_for(
        "analytics after the restart",
        lambda: _analytics_total(own_gateway, account) == total or None,
        timeout_s=60,
    )
    assert own_stack.service_pids() == pids
    assert own_gateway.get("/health/db").status_code == 200
    wait_for("the gateway to find every service up", _healthy(own_gateway))
