"""One client floods logins; another user is served all along (the gateway's client limits).

60 logins at once from one address (127.0.0.1, as every test client here) used to take
every connection of auth's pool: 23 answered 503 "at capacity" and another user's
``GET /auth/me`` waited 1.86 s. With the per-client limits at their defaults (8 in
flight, 8 waiting), the flood's excess is refused at the edge with 429 and the fields
that say when to retry, and the pool keeps room for everyone else. How fast the other
user is served is measured by the bench (``login_flood``), not asserted here.
"""

import asyncio
import re

import httpx
from momentum_libs.devstack import Stack

from ..conftest import PASSWORD, Account, new_account, register

BURST = 60
DEFAULT_IN_FLIGHT = 8
DEFAULT_QUEUED = 8


async def _flood_while_probing(
    base_url: str, email: str, victim: Account
) -> tuple[list[httpx.Response], list[httpx.Response]]:
    body = {"email": email, "password": PASSWORD}
    flooding = asyncio.Event()
    probes: list[httpx.Response] = []
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=60) as attacker,
        httpx.AsyncClient(base_url=base_url, timeout=60) as other,
    ):

        async def probe() -> None:
            await flooding.wait()
            while flooding.is_set():
                probes.append(await other.get("/auth/me", headers=victim.headers))

        async def flood() -> list[httpx.Response]:
            logins = [attacker.post("/auth/login", json=body) for _ in range(BURST)]
            flooding.set()
            try:
                return list(await asyncio.gather(*logins))
            finally:
                flooding.clear()

        prober = asyncio.create_task(probe())
        answers = await flood()
        await prober
    return answers, probes


def test_a_login_flood_from_one_address_is_refused_and_another_user_is_served(
    stack: Stack, gateway: httpx.Client
) -> None:
    flooder = str(register(gateway)["email"])
    victim = new_account(gateway)
    answers, probes = asyncio.run(_flood_while_probing(stack.gateway_url, flooder, victim))

    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {200, 429}, statuses  # never 503: the pool was never full
    refused = [r for r in answers if r.status_code == 429]
    # At most 8 run and 8 wait at a time: of 60 sent at once, most are refused (a few
    # more than 16 get in only if some of the first finish before the last arrive).
    assert len(refused) >= BURST - 2 * (DEFAULT_IN_FLIGHT + DEFAULT_QUEUED), statuses
    assert statuses.count(200) >= DEFAULT_IN_FLIGHT, statuses
    for response in refused:
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["status"] == 429
        assert problem["violated-policies"] == ["in-flight"]
        assert int(response.headers["retry-after"]) >= 1
        assert '"in-flight";q=8;qu="concurrent-requests"' in response.headers["ratelimit-policy"]
        assert re.search(r'"in-flight";r=0', response.headers["ratelimit"])

    # The other user (same address, its own token) was answered every time, and counted
    # by its own subject: its in-flight slots were all free.
    assert probes, "the other user sent nothing while the flood ran"
    assert [p.status_code for p in probes] == [200] * len(probes), [p.text for p in probes]
    assert all('"in-flight";r=7' in p.headers["ratelimit"] for p in probes)
    assert all(p.json()["email"] == victim.email for p in probes)
