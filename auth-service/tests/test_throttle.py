"""Login throttling: failures only, per email and per client address, independent windows."""

import asyncio
import uuid

import httpx
import pytest
from momentum_auth.tokens.throttle import LoginThrottle
from momentum_libs.problems import ProblemError
from momentum_libs.testing.metrics import sample
from redis.asyncio import Redis

from .conftest import (
    PASSWORD,
    SettingsFactory,
    assert_problem,
    login,
    register,
    running,
    unique_email,
)

LOCKS = ("email", "address")


def address() -> dict[str, str]:
    """A client address of our own, as the gateway would forward it."""
    octets = uuid.uuid4().bytes[:3]
    return {"X-Forwarded-For": f"10.{octets[0]}.{octets[1]}.{octets[2]}, 192.168.0.1"}


async def fail(client: httpx.AsyncClient, email: str, headers: dict[str, str]) -> None:
    response = await client.post(
        "/auth/login", json={"email": email, "password": "wrong password"}, headers=headers
    )
    assert_problem(response, 401)


async def test_more_than_ten_failures_lock_the_email_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    email = (await register(client))["email"]
    here = address()
    failures = sample("momentum_login_failures_total")
    locks = sample("momentum_login_locks_total", scope="email")
    for _ in range(11):  # the 11th attempt is still judged: only MORE than 10 lock
        await fail(client, email, here)
    assert sample("momentum_login_failures_total") == failures + 11
    assert sample("momentum_login_locks_total", scope="email") == locks + 1  # one lock began
    # Locked: even the right password, even from elsewhere.
    for headers in (here, address()):
        locked = await client.post(
            "/auth/login", json={"email": email, "password": PASSWORD}, headers=headers
        )
        problem = assert_problem(locked, 429)
        assert PASSWORD not in str(problem)
        assert 0 < int(locked.headers["Retry-After"]) <= 900
    # The address is not locked: another account logs in from it.
    other = (await register(client))["email"]
    assert (await login(client, other, **here))["access_token"]


async def test_the_address_locks_after_its_limit_and_not_the_emails(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(login_max_failures_per_address=5, login_failure_window_seconds=60)
    async with running(settings) as (_, client):
        victim = (await register(client))["email"]
        attacker = address()
        locks = {scope: sample("momentum_login_locks_total", scope=scope) for scope in LOCKS}
        for _ in range(6):  # more than 5 failures lock it
            await fail(client, unique_email(), attacker)  # unknown emails count too
        assert sample("momentum_login_locks_total", scope="address") == locks["address"] + 1
        assert sample("momentum_login_locks_total", scope="email") == locks["email"]
        for email in (victim, unique_email()):
            locked = await client.post(
                "/auth/login", json={"email": email, "password": PASSWORD}, headers=attacker
            )
            assert_problem(locked, 429)
            assert 0 < int(locked.headers["Retry-After"]) <= 60
        # The victim's email is not locked: from their own address they get in.
        assert (await login(client, victim, **address()))["access_token"]


async def test_the_peer_address_counts_without_x_forwarded_for(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(login_max_failures_per_address=3)
    async with running(settings) as (_, client):
        for _ in range(4):
            await fail(client, unique_email(), {})
        assert_problem(
            await client.post("/auth/login", json={"email": unique_email(), "password": "x"}),
            429,
        )
        # A forwarded address is another client.
        await fail(client, unique_email(), address())


async def test_a_success_clears_the_emails_failures(make_settings: SettingsFactory) -> None:
    settings = make_settings(login_max_failures_per_email=3)
    async with running(settings) as (_, client):
        email = (await register(client))["email"]
        here = address()
        for _ in range(2):
            await fail(client, email, here)
        await login(client, email, **here)
        for _ in range(2):
            await fail(client, email, here)
        # Four failures in the window, but the success in between cleared two of them.
        assert (await login(client, email, **here))["access_token"]
        for _ in range(4):
            await fail(client, email, here)
        assert_problem(
            await client.post(
                "/auth/login", json={"email": email, "password": PASSWORD}, headers=here
            ),
            429,
        )


async def test_successes_are_not_counted(make_settings: SettingsFactory) -> None:
    settings = make_settings(login_max_failures_per_email=2, login_max_failures_per_address=2)
    async with running(settings) as (_, client):
        email = (await register(client))["email"]
        here = address()
        for _ in range(5):
            await login(client, email, **here)


async def test_parallel_guesses_cannot_overshoot_the_email_limit(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(login_max_failures_per_email=5)
    async with running(settings) as (_, client):
        email = (await register(client))["email"]
        responses = await asyncio.gather(
            *(
                client.post(
                    "/auth/login",
                    json={"email": email, "password": f"guess {i}"},
                    headers=address(),
                )
                for i in range(20)
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * 6 + [429] * 14


async def test_wrong_current_passwords_count_like_failed_logins(
    make_settings: SettingsFactory,
) -> None:
    """A stolen access token must not be a way to brute-force the account's password."""
    settings = make_settings(login_max_failures_per_email=3)
    async with running(settings) as (_, client):
        email = (await register(client))["email"]
        here = address()
        tokens = await login(client, email, **here)
        headers = {"Authorization": f"Bearer {tokens['access_token']}", **here}
        statuses = []
        for i in range(5):
            response = await client.patch(
                "/users/me",
                json={"password": "brand new password", "current_password": f"guess {i}"},
                headers=headers,
            )
            statuses.append(response.status_code)
        assert statuses == [400] * 4 + [429]
        # The email is locked for logins too, even with the right password.
        locked = await client.post(
            "/auth/login", json={"email": email, "password": PASSWORD}, headers=address()
        )
        assert_problem(locked, 429)


async def test_an_attempt_left_unjudged_frees_its_slot(make_settings: SettingsFactory) -> None:
    """An error between admission and verdict (MongoDB down, a bug) must not hold the
    email's room until the slot expires: the next attempts are admitted at once."""
    settings = make_settings(login_max_failures_per_email=1)  # room for two in flight
    redis = Redis.from_url(settings.redis_url)
    throttle = LoginThrottle(redis, settings)
    email, here = unique_email(), "10.0.0.1"
    try:
        for _ in range(3):  # more than the room: each one's slot was released
            with pytest.raises(RuntimeError):
                async with throttle.attempt(email, here):
                    raise RuntimeError("the store went away")
        async with throttle.attempt(email, here) as first, throttle.attempt(email, here) as second:
            await first.failed()
            await second.failed()
        # Two failures, more than one: locked, and only the failures were counted.
        with pytest.raises(ProblemError) as locked:
            async with throttle.attempt(email, here):
                pass
        assert locked.value.status == 429
        assert locked.value.type_slug == "too-many-login-failures"
    finally:
        await redis.aclose()
