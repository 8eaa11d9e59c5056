"""Login throttling through the gateway: failures lock, successes never do, at any concurrency."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from momentum_libs.devstack import Stack
from momentum_libs.testing.plugin import namespaced_stack, new_namespace

from .conftest import PASSWORD, assert_problem, register, unique_email

MAX_FAILURES_PER_ADDRESS = 5


async def _simultaneous_logins(base_url: str, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return list(await asyncio.gather(*(client.post("/auth/login", json=b) for b in bodies)))


def logins(base_url: str, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    return asyncio.run(_simultaneous_logins(base_url, bodies))


def assert_locked(response: httpx.Response) -> None:
    problem = assert_problem(response, 429)
    assert str(problem["type"]).endswith("/too-many-login-failures")
    assert int(response.headers["Retry-After"]) > 0


def test_simultaneous_correct_logins_all_succeed(stack: Stack, gateway: httpx.Client) -> None:
    email = str(register(gateway)["email"])
    responses = logins(stack.gateway_url, [{"email": email, "password": PASSWORD}] * 16)
    assert [r.status_code for r in responses] == [200] * 16, [r.text for r in responses]
    assert len({r.json()["refresh_token"] for r in responses}) == 16


def test_simultaneous_wrong_logins_lock_the_email_exactly(
    stack: Stack, gateway: httpx.Client
) -> None:
    email = str(register(gateway)["email"])
    wrong = [{"email": email, "password": f"guess {i}"} for i in range(11)]
    responses = logins(stack.gateway_url, wrong)
    # More than 10 failures lock: all 11 are judged, the 12th attempt and later are not.
    for response in responses:
        assert_problem(response, 401)
    for response in logins(stack.gateway_url, [{"email": email, "password": PASSWORD}] * 3):
        assert_locked(response)


def test_parallel_guesses_beyond_the_limit_are_refused_not_judged(
    stack: Stack, gateway: httpx.Client
) -> None:
    email = str(register(gateway)["email"])
    responses = logins(stack.gateway_url, [{"email": email, "password": "wrong"}] * 20)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * 11 + [429] * 9


@pytest.fixture(scope="module")
def strict_address_stack(
    tmp_path_factory: pytest.TempPathFactory, mongodb_url: str, redis_url: str
) -> Iterator[Stack]:
    """A stack of its own: the shared one's address (127.0.0.1) is every test's address."""
    namespace = new_namespace("a")
    env = {
        "MOMENTUM_AUTH_LOGIN_MAX_FAILURES_PER_ADDRESS": str(MAX_FAILURES_PER_ADDRESS),
    }
    data_dir = tmp_path_factory.mktemp("strict-address")
    with namespaced_stack(data_dir, mongodb_url, redis_url, namespace, env) as running:
        yield running


def test_the_address_window_counts_failures_only_at_any_concurrency(
    strict_address_stack: Stack,
) -> None:
    url = strict_address_stack.gateway_url
    with httpx.Client(base_url=url, timeout=30) as client:
        email = str(register(client)["email"])
    # Successes from one address, far more than its failure limit and all at once: none counts.
    correct = logins(url, [{"email": email, "password": PASSWORD}] * 16)
    assert [r.status_code for r in correct] == [200] * 16
    # MORE than 5 failures lock the address, whichever emails they name, even in parallel.
    wrong = [
        {"email": unique_email(), "password": "wrong"} for _ in range(MAX_FAILURES_PER_ADDRESS + 1)
    ]
    for response in logins(url, wrong):
        assert_problem(response, 401)
    for response in logins(url, [{"email": email, "password": PASSWORD}] * 2):
        assert_locked(response)
