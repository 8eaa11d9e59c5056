"""Load through the gateway: 50 concurrent clients x 20 logs, with idempotent retries.

10 users, 5 clients each, so that clients of one user race each other (and the
analytics projection of that user). Every log carries an Idempotency-Key; some are
deliberately sent twice in a row, some twice at once. Then: no 5xx anywhere, no log
stored twice, and analytics (totals, streaks, this week, the heatmap) equal a
recomputation from the logs tracking holds.
"""

import asyncio
import functools
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from momentum_libs.devstack import Stack

from ..conftest import Account, new_account
from .conftest import CLIENT_TIMEOUT_S, all_pages, create_goal, today, wait_for

USERS = 10
CLIENTS_PER_USER = 5
LOGS_PER_CLIENT = 20
DAYS = 14  # logs fall on the last 14 days, with gaps


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → log
    ids_by_key: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    retries: int = 0
    concurrent_twins: int = 0
    dropped_connections: int = 0


async def _post_until_created(
    client: httpx.AsyncClient, account: Account, key: str, body: dict[str, Any], tally: Tally
) -> dict[str, Any]:
    """POST with the key; a 409 (the same key still in flight) is retried.

    So is a kept-alive connection the server closed just as we reused it (HTTP/1.1's
    idle race, a ReadError or RemoteProtocolError before any answer): that is what an
    Idempotency-Key is for. A timeout is not retried: it is a request that hung.
    """
    for _ in range(100):
        try:
            response = await client.post(
                "/daily-logs", json=body, headers={**account.headers, "Idempotency-Key": key}
            )
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
            tally.dropped_connections += 1
            continue
        tally.statuses[response.status_code] += 1
        if response.status_code == 201:
            created: dict[str, Any] = response.json()
            tally.ids_by_key[key].add(created["id"])
            tally.acknowledged[created["id"]] = created
            return created
        assert response.status_code == 409, response.text
        await asyncio.sleep(0.05)
    raise AssertionError(f"key {key} never got its 201")


async def _client(
    base_url: str,
    account: Account,
    goal_id: str,
    days: list[date],
    seed: int,
    tally: Tally,
) -> None:
    rng = random.Random(seed)
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends them under us.
    limits = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=CLIENT_TIMEOUT_S, limits=limits
    ) as client:
        for i in range(LOGS_PER_CLIENT):
            key = uuid.uuid4().hex
            body = {
                "goal_id": goal_id,
                "date": rng.choice(days).isoformat(),
                "minutes": rng.randint(1, 90),
            }
            first = await _post_until_created(client, account, key, body, tally)
            if i % 4 == 0:  # a client that lost the answer and retries: the same log again
                again = await _post_until_created(client, account, key, body, tally)
                assert again == first
                tally.retries += 1
            elif i % 10 == 5:  # two retries racing each other
                twins = await asyncio.gather(
                    _post_until_created(client, account, key, body, tally),
                    _post_until_created(client, account, key, body, tally),
                )
                assert twins[0] == twins[1] == first
                tally.concurrent_twins += 1


def _streaks(active: set[date], now: date) -> tuple[int, int]:
    """(current, longest) by issue 15's rules with the default settings (docs/api.md): every
    7th active day of a run earns a freeze (2 held at most), a missed past day spends one or
    ends the run; today counts once active, else it is pending."""
    length = freezes = longest = 0
    day = min(active, default=now)
    while day < now:
        if day in active:
            length += 1
            longest = max(longest, length)
            if length % 7 == 0:
                freezes = min(2, freezes + 1)
        elif length and freezes:
            freezes -= 1
        else:
            length = freezes = 0
        day += timedelta(days=1)
    if now in active:
        length += 1
    return length, max(longest, length)


@pytest.fixture(scope="module")
def sync_gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=CLIENT_TIMEOUT_S) as client:
        yield client


def test_fifty_concurrent_clients_lose_nothing_and_duplicate_nothing(
    stack: Stack, sync_gateway: httpx.Client
) -> None:
    rng = random.Random(7)
    now = today()
    accounts = [new_account(sync_gateway) for _ in range(USERS)]
    goals = [create_goal(sync_gateway, account) for account in accounts]
    # Each user logs on their own subset of the last 14 days: gaps, and for some no today.
    user_days: list[list[date]] = []
    for u in range(USERS):
        days = [now - timedelta(days=k) for k in range(DAYS) if rng.random() < 0.75 or k == 1]
        if u % 3 == 0 and now in days:
            days.remove(now)  # the current streak then ends yesterday
        user_days.append(days)
    tallies = [Tally() for _ in range(USERS)]

    async def all_clients() -> None:
        await asyncio.gather(
            *(
                _client(
                    stack.gateway_url,
                    accounts[u],
                    goals[u],
                    user_days[u],
                    seed=u * 100 + c,
                    tally=tallies[u],
                )
                for u in range(USERS)
                for c in range(CLIENTS_PER_USER)
            )
        )

    asyncio.run(all_clients())

    statuses = sum((t.statuses for t in tallies), Counter[int]())
    assert not [s for s in statuses if s >= 500], statuses
    assert set(statuses) <= {201, 409}, statuses
    assert sum(t.retries for t in tallies) >= USERS * CLIENTS_PER_USER * 5
    assert sum(t.concurrent_twins for t in tallies) >= USERS * CLIENTS_PER_USER * 2

    expected: dict[str, tuple[int, dict[str, int], int]] = {}
    monday = now - timedelta(days=now.weekday())
    for account, tally in zip(accounts, tallies, strict=True):
        # One id per key, whatever the retries; exactly the acknowledged logs are stored.
        assert all(len(ids) == 1 for ids in tally.ids_by_key.values())
        assert len(tally.ids_by_key) == CLIENTS_PER_USER * LOGS_PER_CLIENT
        stored = all_pages(sync_gateway, "/daily-logs", account.headers)
        stored_ids = [str(item["id"]) for item in stored]
        assert len(stored_ids) == len(set(stored_ids)) == CLIENTS_PER_USER * LOGS_PER_CLIENT
        assert set(stored_ids) == set(tally.acknowledged)
        per_day: dict[str, int] = defaultdict(int)
        for item in stored:
            per_day[str(item["date"])] += int(str(item["minutes"]))
        this_week = sum(m for d, m in per_day.items() if date.fromisoformat(d) >= monday)
        expected[account.email] = (sum(per_day.values()), dict(per_day), this_week)

    def analytics_caught_up(account: Account) -> bool | None:
        total, per_day, this_week = expected[account.email]
        active = {date.fromisoformat(d) for d, m in per_day.items() if m > 0}
        current, longest = _streaks(active, now)
        dash = sync_gateway.get("/analytics/dashboard", headers=account.headers).json()
        if dash["total_minutes"] != total:
            return None  # still catching up
        streak = sync_gateway.get("/analytics/streak", headers=account.headers).json()
        # Freshness (docs/http-semantics.md): this user's events were applied.
        assert streak.pop("as_of") is not None and isinstance(streak.pop("pending"), bool)
        figures = {k: streak[k] for k in ("current_streak", "longest_streak", "last_activity_date")}
        assert figures == {
            "current_streak": current,
            "longest_streak": longest,
            "last_activity_date": max(active).isoformat(),
        }
        assert streak["today"]["date"] == now.isoformat()
        assert dash["current_streak"] == current
        assert dash["longest_streak"] == longest
        assert dash["weekly_logged_minutes"] == this_week
        assert dash["total_hours"] == round(total / 60, 2)
        heat = sync_gateway.get(
            "/analytics/heatmap",
            params={"from": (now - timedelta(days=DAYS - 1)).isoformat(), "to": now.isoformat()},
            headers=account.headers,
        ).json()
        assert {d["date"]: d["minutes"] for d in heat["days"] if d["minutes"]} == per_day
        return True

    for account in accounts:
        wait_for(
            f"analytics of {account.email}",
            functools.partial(analytics_caught_up, account),
            timeout_s=120,
            every_s=0.5,
        )


async def _activate_all(base_url: str, account: Account, order: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        return await asyncio.gather(
            *(client.patch(f"/goals/{g}/activate", headers=account.headers) for g in order)
        )


def test_concurrent_activations_leave_exactly_one_active_goal(
    stack: Stack, sync_gateway: httpx.Client
) -> None:
    account = new_account(sync_gateway)
    goal_ids = [create_goal(sync_gateway, account, f"goal {i}") for i in range(8)]
    for round_ in range(3):
        # 16 at once: what one client may have in flight and queued at the gateway (8 + 8
        # by default); more would be 429 by design.
        order = [g for g in goal_ids for _ in range(2)]
        random.Random(round_).shuffle(order)
        responses = asyncio.run(_activate_all(stack.gateway_url, account, order))
        assert [r.status_code for r in responses] == [200] * len(order), [
            r.text for r in responses if r.status_code != 200
        ]
        listed = all_pages(sync_gateway, "/goals", account.headers)
        active = [g["id"] for g in listed if g["is_active"]]
        assert len(active) == 1, listed
        filtered = sync_gateway.get(
            "/goals", params={"is_active": "true"}, headers=account.headers
        ).json()["items"]
        assert [g["id"] for g in filtered] == active
    winner = active[0]

    def analytics_active_goal() -> str | None:
        # None too while analytics is between one goal's deactivation and the next's
        # activation: two events of the race.
        active_goal = sync_gateway.get("/analytics/dashboard", headers=account.headers).json()[
            "active_goal"
        ]
        return None if active_goal is None else str(active_goal["id"])

    wait_for(
        "analytics to learn the active goal",
        lambda: analytics_active_goal() == winner or None,
        timeout_s=60,
    )
