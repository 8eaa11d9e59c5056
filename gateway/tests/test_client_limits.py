"""Per-client limits at the edge: in flight and per window, with the RateLimit fields.

Each test runs a gateway of its own (``start_gateway``) with small limits; the windows
are an hour long, so no test straddles a window's reset.
"""

import asyncio
import re
import uuid

import httpx
import pytest
from momentum_libs.testing.plugin import OwnRedis
from momentum_libs.testing.tokens import TestSigner

from .conftest import StartGateway, assert_problem, bearer, unsigned_token

HOUR = 3600
LOGIN = {"email": "a@example.com", "password": "whatever"}
# RateLimit: "window";r=<remaining>;t=<seconds to reset>[, "in-flight";r=<slots left>]
WINDOW_ITEM = re.compile(r'"window";r=(\d+);t=(\d+)')


def window_remaining(response: httpx.Response) -> int:
    found = WINDOW_ITEM.search(response.headers["ratelimit"])
    assert found, response.headers["ratelimit"]
    assert 0 < int(found[2]) <= HOUR
    return int(found[1])


def assert_too_many(response: httpx.Response, policy: str) -> None:
    body = assert_problem(response, 429)
    assert str(body["type"]).endswith("/too-many-requests")
    assert body["violated-policies"] == [policy]
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["cache-control"] == "no-store"
    assert "ratelimit-policy" in response.headers


def test_the_window_counts_down_then_refuses_until_its_reset(
    start_gateway: StartGateway, signer: TestSigner
) -> None:
    gw = start_gateway(rate_limit_requests=3, rate_limit_window_seconds=HOUR)
    headers = bearer(signer.mint(user_id=f"u-{uuid.uuid4().hex}"))
    answers = [gw.get("/goals", headers=headers) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [window_remaining(r) for r in answers] == [2, 1, 0, 0]
    policy = answers[0].headers["ratelimit-policy"]
    assert policy == '"window";q=3;w=3600, "in-flight";q=8;qu="concurrent-requests"'
    refused = answers[3]
    assert_too_many(refused, "window")
    reset = int(WINDOW_ITEM.search(refused.headers["ratelimit"])[2])  # type: ignore[index]
    assert int(refused.headers["retry-after"]) == reset


def test_each_user_and_each_address_has_a_window_of_its_own(
    start_gateway: StartGateway, signer: TestSigner
) -> None:
    gw = start_gateway(rate_limit_requests=2, rate_limit_window_seconds=HOUR)
    for _ in range(2):
        assert gw.post("/auth/login", json=LOGIN).status_code == 200
    assert_too_many(gw.post("/auth/login", json=LOGIN), "window")
    # A user behind the same address is counted by its token's subject.
    user = bearer(signer.mint(user_id="someone"))
    assert gw.get("/goals", headers=user).status_code == 200
    # A token that is not validly signed names no subject: its sender's address is full.
    assert_too_many(gw.get("/goals", headers=bearer(unsigned_token(signer))), "window")
    assert_too_many(gw.get("/goals", headers=bearer(TestSigner().mint())), "window")


def test_a_client_supplied_x_forwarded_for_is_not_its_address(
    start_gateway: StartGateway,
) -> None:
    gw = start_gateway(rate_limit_requests=1, rate_limit_window_seconds=HOUR)
    first = gw.post("/auth/login", json=LOGIN, headers={"X-Forwarded-For": "203.0.113.1"})
    assert first.status_code == 200
    again = gw.post("/auth/login", json=LOGIN, headers={"X-Forwarded-For": "203.0.113.2"})
    assert_too_many(again, "window")


def test_health_and_liveness_are_never_limited(start_gateway: StartGateway) -> None:
    gw = start_gateway(rate_limit_requests=1, client_max_in_flight=1)
    for path in ["/livez", "/health", "/health/db"] * 3:
        response = gw.get(path)
        assert response.status_code == 200, response.text
        assert "ratelimit" not in response.headers
    assert gw.post("/auth/login", json=LOGIN).status_code == 200


def test_preflights_never_count_and_browsers_may_read_the_fields(
    start_gateway: StartGateway,
) -> None:
    origin = "https://app.example"
    gw = start_gateway(rate_limit_requests=1, cors_origins=[origin])
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    for _ in range(3):
        response = gw.options("/auth/login", headers=preflight)
        assert response.status_code == 200
        assert "ratelimit" not in response.headers
    answer = gw.post("/auth/login", json=LOGIN, headers={"Origin": origin})
    assert answer.status_code == 200
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "ratelimit" in exposed and "ratelimit-policy" in exposed
    refused = gw.post("/auth/login", json=LOGIN, headers={"Origin": origin})
    assert_too_many(refused, "window")
    assert refused.headers["access-control-allow-origin"] == origin


async def test_past_its_in_flight_slots_and_queue_a_client_is_refused(
    start_gateway: StartGateway, signer: TestSigner
) -> None:
    # The stand-in's /goals/slow answers after 5 s; the queue gives up after 0.5 s.
    gw = start_gateway(
        client_max_in_flight=2,
        client_max_queued=1,
        client_queue_timeout_seconds=0.5,
        read_timeout_seconds=30,
    )
    greedy = bearer(signer.mint(user_id="greedy"))
    other = bearer(signer.mint(user_id="other"))
    async with httpx.AsyncClient(base_url=str(gw.base_url), timeout=30) as client:
        slow = [asyncio.create_task(client.get("/goals/slow", headers=greedy)) for _ in range(4)]
        await asyncio.sleep(1.0)  # all four are in: two running, one queued, one refused
        # Meanwhile another user is served, its own slots untouched.
        served = await client.get("/goals", headers=other)
        answers = await asyncio.gather(*slow)
    assert served.status_code == 200
    assert '"in-flight";r=1' in served.headers["ratelimit"]
    assert sorted(r.status_code for r in answers) == [200, 200, 429, 429]
    for refused in (r for r in answers if r.status_code == 429):
        assert_too_many(refused, "in-flight")
        assert '"in-flight";r=0' in refused.headers["ratelimit"]
        assert refused.headers["retry-after"] == "1"


async def test_a_queued_request_gets_the_slot_its_predecessor_frees(
    start_gateway: StartGateway, signer: TestSigner
) -> None:
    gw = start_gateway(client_max_in_flight=1, client_max_queued=5, read_timeout_seconds=30)
    headers = bearer(signer.mint(user_id="patient"))
    async with httpx.AsyncClient(base_url=str(gw.base_url), timeout=30) as client:
        answers = await asyncio.gather(
            *(client.get("/goals/stream", headers=headers) for _ in range(6))
        )
    assert [r.status_code for r in answers] == [200] * 6


def test_zero_turns_the_limits_off(start_gateway: StartGateway) -> None:
    gw = start_gateway(rate_limit_requests=0, client_max_in_flight=0)
    for _ in range(3):
        response = gw.post("/auth/login", json=LOGIN)
        assert response.status_code == 200
        assert "ratelimit" not in response.headers


@pytest.mark.parametrize("redis_fixture", ["redis_url", "redis_cluster_url"])
def test_redis_windows_hold_across_gateways(
    start_gateway: StartGateway, redis_fixture: str, request: pytest.FixtureRequest
) -> None:
    shared = {
        "rate_limit_requests": 2,
        "rate_limit_window_seconds": HOUR,
        "rate_limit_storage": "redis",
        "redis_key_prefix": f"test:{uuid.uuid4().hex}:",
        # One node, or a cluster (limits' RedisClusterStorage from the URL).
        "redis_url": request.getfixturevalue(redis_fixture),
    }
    first, second = start_gateway(**shared), start_gateway(**shared)
    assert window_remaining(first.post("/auth/login", json=LOGIN)) == 1
    assert window_remaining(second.post("/auth/login", json=LOGIN)) == 0
    assert_too_many(first.post("/auth/login", json=LOGIN), "window")


def test_without_redis_the_windows_let_requests_through(
    start_gateway: StartGateway, own_redis: OwnRedis
) -> None:
    gw = start_gateway(
        rate_limit_requests=1,
        rate_limit_window_seconds=HOUR,
        rate_limit_storage="redis",
        redis_url=own_redis.url,
    )
    assert gw.post("/auth/login", json=LOGIN).status_code == 200
    own_redis.stop()
    # Over the quota, but nobody can count it: let through, the in-flight limit still on.
    response = gw.post("/auth/login", json=LOGIN)
    assert response.status_code == 200
    assert response.headers["ratelimit"] == '"in-flight";r=7'
