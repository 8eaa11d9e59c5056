"""The login flood: bursts of 60 logins at once from one address, and meanwhile another
user's ``GET /auth/me``, with the gateway's per-client limits off and at their defaults.

The rest of the bench runs with the limits raised out of the way (``BENCH_LIMITS`` in
run.py: one token at concurrency 32 is its method, not an attack), so this phase starts
the gateway again for each setting (three; only the defaults with `--quick`), and once
more with the bench's own at the end.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from momentum_libs.devstack import Stack

from bench import loadgen
from bench.api import PASSWORD, User
from bench.stats import LatencySummary

BURST = 60
LIMITS_OFF = {
    "MOMENTUM_GATEWAY_CLIENT_MAX_IN_FLIGHT": "0",
    "MOMENTUM_GATEWAY_RATE_LIMIT_REQUESTS": "0",
}
# name → (the gateway's limits, whether the attacker runs)
CONDITIONS = {
    "no_attack": ({}, False),
    "limits_off": (LIMITS_OFF, True),
    "limits_default": ({}, True),
}


async def _restart_gateway(stack: Stack, env: dict[str, str], keep: dict[str, str]) -> None:
    for name in (*LIMITS_OFF, *keep):
        stack.extra_env.pop(name, None)
    stack.extra_env.update(env)
    await asyncio.to_thread(stack.restart_service, "gateway")


async def _probe(base_url: str, victim: User, seconds: float) -> dict[str, Any]:
    """The victim's GET /auth/me, one after another, for ``seconds``."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        for _ in range(5):  # a fresh gateway fetches the signing keys on first use
            await client.get("/auth/me", headers=victim.headers)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.get("/auth/me", headers=victim.headers)
            statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
    errors = sum(n for status, n in statuses.items() if status != "200")
    summary = LatencySummary.of(latencies, errors, seconds)
    return {**summary.as_dict(), "statuses": dict(statuses)}


async def _flood(
    stack: Stack, victim: User, attacker: User, seconds: float, attack: bool
) -> dict[str, Any]:
    if not attack:
        return {"victim_auth_me": await _probe(stack.gateway_url, victim, seconds)}
    driver = await loadgen.Driver.start(
        {
            "mode": "login_bursts",
            "base_url": stack.gateway_url,
            "path": "/auth/login",
            "tokens": [""],
            "credentials": {"email": attacker.email, "password": PASSWORD},
            "concurrency": BURST,
            "duration_s": seconds + 2.0,
            "warmup_s": 0.0,
        }
    )
    try:
        await asyncio.sleep(0.5)  # the first burst is in
        victim_figures = await _probe(stack.gateway_url, victim, seconds)
    finally:
        attack = await driver.stop()
    return {"victim_auth_me": victim_figures, "attacker": {"statuses": attack["statuses"]}}


async def measure(
    stack: Stack,
    victim: User,
    attacker: User,
    seconds: float,
    bench_env: dict[str, str],
    log: Callable[[str], None],
    *,
    only_defaults: bool = False,
) -> dict[str, Any]:
    """``only_defaults`` (``--quick``): the limits as shipped only, one restart, not three."""
    results: dict[str, Any] = {"burst": BURST, "seconds": seconds}
    try:
        for label, (env, attack) in CONDITIONS.items():
            if only_defaults and label != "limits_default":
                continue
            await _restart_gateway(stack, env, bench_env)
            results[label] = figures = await _flood(stack, victim, attacker, seconds, attack)
            me = figures["victim_auth_me"]
            log(
                f"  {label:14} victim GET /auth/me p50 {me['p50_ms']:.1f} ms "
                f"p99 {me['p99_ms']:.1f} ms ({me['count']} requests, statuses {me['statuses']}); "
                f"attacker statuses {figures.get('attacker', {}).get('statuses')}"
            )
    finally:
        await _restart_gateway(stack, bench_env, {})
    results["victim_p99_ms"] = results["limits_default"]["victim_auth_me"]["p99_ms"]
    return results
