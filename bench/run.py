"""``python -m bench [--quick] [--out DIR]``: start a private stack, measure, report, stop.

The phases, in order (each on the same machine in the same run, so ratios hold):
gateway overhead (wrk, or the httpx driver without it) → analytics flatness → event lag
at idle → write path → event lag under the write load → memory → rebuild. See
``bench/README.md`` for what each figure means.
"""

import argparse
import asyncio
import contextlib
import datetime as dt
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psutil
from momentum_libs.devstack import Stack

from bench import flood, imports, loadgen, partitions, profiling, rebuild
from bench.api import Api, User, bounded, today_utc
from bench.monitor import BacklogMonitor, applied_within, delay_shares, delete_namespace_keys
from bench.report import machine_info, write_results
from bench.sizes import FULL, QUICK, Sizes
from bench.stats import LatencySummary
from bench.system import cpu_seconds, rss_mb

SERVICES = ("gateway", "auth", "tracking", "analytics")
PHASES = (
    "gateway_overhead",
    "dashboard_flatness",
    "event_lag",
    "write",
    "login_flood",
    "imports",
    "rebuild",
    "partitions",
)
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
# The closed-loop write load keeps both cores busy, so its lag mixes the pipeline's own delay
# with waiting for a CPU. The paced phase writes at this share of the closed loop's req/s:
# the same pipeline with CPU to spare.
PACED_SHARE = 0.5
# The bench drives the gateway with one token at concurrency 32 and a few users at
# hundreds of requests per second: its method, not an attack. The per-client limits are
# raised out of its way but stay on, so their cost is in every figure (the login_flood
# phase runs them at their defaults).
BENCH_LIMITS = {
    "MOMENTUM_GATEWAY_CLIENT_MAX_IN_FLIGHT": "1024",
    "MOMENTUM_GATEWAY_RATE_LIMIT_REQUESTS": "1000000000",
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def flatness(one_day: list[float], three_years: list[float]) -> dict[str, Any]:
    """p50 and p99 of a read for the one-day and the three-year user, and their ratio."""
    one = LatencySummary.of(one_day, 0, sum(one_day))
    three = LatencySummary.of(three_years, 0, sum(three_years))
    return {
        "p50_ms_1_day": round(one.p50_ms, 3),
        "p50_ms_3_years": round(three.p50_ms, 3),
        "ratio": round(three.p50_ms / one.p50_ms, 3),
        "p99_ms_1_day": round(one.p99_ms, 3),
        "p99_ms_3_years": round(three.p99_ms, 3),
        "samples_each": len(one_day),
    }


class Bench:
    def __init__(
        self, stack: Stack, sizes: Sizes, profiler: profiling.Profiler, phases: set[str]
    ) -> None:
        self.phases = phases
        self.stack = stack
        self.sizes = sizes
        self.profiler = profiler
        self.results: dict[str, Any] = {}
        self.notes: list[str] = []

    # -- helpers ---------------------------------------------------------------------
    def wanted(self, phase: str) -> bool:
        return not self.phases or phase in self.phases

    def memory(self) -> dict[str, float]:
        return {name: rss_mb(self.stack.services[name].pid) for name in SERVICES}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        log(f"{name} ...")
        started = time.perf_counter()
        with self.profiler.phase(name):
            yield
        seconds = time.perf_counter() - started
        self.results.setdefault("phase_seconds", {})[name] = round(seconds, 1)
        log(f"{name} done in {seconds:.1f}s")

    async def wait_reflected(
        self, api: Api, user: User, total_minutes: int, timeout_s: float
    ) -> float:
        """Seconds until the user's dashboard shows total_minutes (the consumer caught up)."""
        started = time.perf_counter()
        while True:
            board = await api.dashboard(user)
            if board["total_minutes"] >= total_minutes:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(
                    f"analytics shows {board['total_minutes']} minutes for a user with "
                    f"{total_minutes} after {timeout_s}s"
                )
            await asyncio.sleep(0.05)

    async def drain(self, api: Api, sentinel: User) -> dict[str, Any]:
        """Write one log for the sentinel user and wait until analytics shows it.

        The stream is ordered, so once the sentinel's event is applied the backlog
        before it is too (modulo the consumer's own concurrency, hence a short settle).
        Returns how long that took and how big the backlog was: the consumer's rate.
        """
        backlog = await BacklogMonitor(self.stack).once()
        before = (await api.dashboard(sentinel))["total_minutes"]
        await api.post_log(sentinel, sentinel.goal_ids[0], today_utc(), 1)
        seconds = await self.wait_reflected(api, sentinel, before + 1, self.sizes.drain_timeout_s)
        await asyncio.sleep(self.sizes.settle_s)
        events = (backlog.get("consumer_lag") or 0) + (backlog.get("outbox_pending") or 0)
        return {
            "analytics_catch_up_s": round(seconds, 2),
            "backlog_events": events,
            "analytics_events_per_s": round(events / seconds, 1) if events > 20 else None,
        }

    # -- phases ----------------------------------------------------------------------
    async def run(self) -> None:
        sizes = self.sizes
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            base_url=self.stack.gateway_url, timeout=30.0, limits=limits
        ) as client:
            api = Api(client)
            with self.phase("users"):
                # Registration hashes a password (slow on purpose): a handful, in parallel.
                labels = [
                    "reader",
                    "probe",
                    "oneday",
                    "threeyears",
                    "sentinel",
                    "victim",
                    "attacker",
                    "importer",
                ]
                labels += [f"writer{i}" for i in range(sizes.write_users)]
                users = await bounded(4, [lambda x=x: api.register(x) for x in labels])
                by_label = dict(zip(labels, users, strict=True))
                await bounded(8, [lambda u=u: api.create_goal(u) for u in users])
                writers = [by_label[f"writer{i}"] for i in range(sizes.write_users)]
                # Touch every route once so lazily imported code is in memory.
                for user in users[:3]:
                    await api.dashboard(user)
                    await client.get("/auth/me", headers=user.headers)
                    await client.get(f"/goals/{user.goal_ids[0]}", headers=user.headers)
            await asyncio.sleep(sizes.settle_s)
            self.results["memory_mb"] = self.memory()

            if self.wanted("gateway_overhead"):
                with self.phase("gateway_overhead"):
                    await self.gateway_overhead(api, by_label["reader"])

            if self.wanted("dashboard_flatness"):
                with self.phase("dashboard_flatness"):
                    await self.dashboard_flatness(api, by_label["oneday"], by_label["threeyears"])
                await self.drain(api, by_label["sentinel"])

            lag: dict[str, Any] = {"p50_ms": None, "p99_ms": None, "p99_ms_under_load": None}
            if self.wanted("event_lag"):
                with self.phase("event_lag_idle"):
                    idle = await self.event_lag(api, by_label["probe"], sizes.lag_probes_idle)
                lag.update(p50_ms=idle["p50_ms"], p99_ms=idle["p99_ms"], idle=idle)

            if self.wanted("write"):
                with self.phase("write"):
                    write = await self.write_path(api, writers)
                write.update(await self.drain(api, by_label["sentinel"]))
                self.results["write"] = write

            if self.wanted("event_lag"):
                with self.phase("event_lag_under_load"):
                    loaded = await self.event_lag_under_load(api, by_label["probe"], writers)
                loaded.update(await self.drain(api, by_label["sentinel"]))
                lag.update(p99_ms_under_load=loaded["p99_ms"], under_load=loaded)
                with self.phase("event_lag_paced"):
                    rate = PACED_SHARE * loaded["background_write"]["rps"]
                    paced = await self.event_lag_under_load(
                        api, by_label["probe"], writers, rate_per_s=rate
                    )
                paced.update(await self.drain(api, by_label["sentinel"]))
                lag.update(p99_ms_paced=paced["p99_ms"], under_paced_load=paced)
                self.results["event_lag"] = lag
            self.results["memory_mb_after_load"] = self.memory()

            if self.wanted("login_flood"):
                with self.phase("login_flood"):
                    victim = by_label["victim"]
                    await api.fresh(victim, min_left_s=300)
                    self.results["login_flood"] = await flood.measure(
                        self.stack,
                        victim,
                        by_label["attacker"],
                        sizes.flood_s,
                        BENCH_LIMITS,
                        log,
                        only_defaults=sizes is QUICK,
                    )

            if self.wanted("imports"):
                with self.phase("imports"):
                    importer = by_label["importer"]
                    await api.fresh(importer, min_left_s=600)
                    self.results["imports"] = await imports.measure(
                        api, importer, sizes.import_logs, log
                    )
                self.results["imports"].update(await self.drain(api, by_label["sentinel"]))

        if self.wanted("rebuild"):
            with self.phase("rebuild"):
                self.results["rebuild"] = await rebuild.measure(self.stack, sizes.rebuild_logs, log)
        # Not in --quick unless asked for: a second stack and its replicas take a minute.
        if self.wanted("partitions") and (sizes is FULL or "partitions" in self.phases):
            with self.phase("partitions"):
                self.results["partitions"] = await partitions.measure(
                    self.stack, sizes.partition_events, log
                )

    async def event_lag_under_load(
        self, api: Api, probe: User, writers: list[User], rate_per_s: float | None = None
    ) -> dict[str, Any]:
        """Probe writes at a fixed rate while the write load runs (closed-loop, or paced to
        ``rate_per_s``); the load stops when the last probe is acknowledged, and the probes
        still unseen are then waited for (at most lag_timeout_s): their lag includes
        draining the backlog the load left."""
        sizes = self.sizes
        tokens = [await api.fresh(u) for u in writers]
        await api.fresh(probe, min_left_s=300)
        driver = await loadgen.Driver.start(
            {
                "mode": "post_logs",
                "base_url": self.stack.gateway_url,
                "tokens": tokens,
                "goal_ids": [u.goal_ids[0] for u in writers],
                "concurrency": sizes.write_concurrency,
                "duration_s": sizes.load_max_s,
                "warmup_s": 0.0,
                **({"rate_per_s": rate_per_s} if rate_per_s else {}),
            }
        )
        monitor = BacklogMonitor(self.stack)
        monitor.start()
        background: dict[str, Any] = {}
        applied_before = await applied_within(self.stack)

        async def stop_load() -> None:
            background.update(await driver.stop())

        try:
            await asyncio.sleep(sizes.load_rampup_s)
            loaded = await self.event_lag_pipelined(
                api, probe, sizes.lag_probes_load, on_written=stop_load
            )
        finally:
            if not background:
                await stop_load()
            backlog = await monitor.stop()
        # Where the lag goes: tracking → analytics (the consumer's own delay histogram, over
        # every event of the phase) against the poller's dashboard reads (poll_ms_*).
        applied = delay_shares(applied_before, await applied_within(self.stack))
        log(
            f"  background write load: {background['rps']:.0f} rps; peak backlog: outbox "
            f"{backlog['max_outbox_pending']}, stream lag {backlog['max_consumer_lag']}; "
            f"events applied within s: {applied}"
        )
        return {
            **loaded,
            "background_write": background,
            "backlog": backlog,
            "applied_within_s": applied,
        }

    async def event_lag_pipelined(
        self,
        api: Api,
        user: User,
        probes: int,
        on_written: Callable[[], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        """Event lag while the system may be behind: a probe write every interval (open
        loop, whatever each write's own latency), and one poller resolving every probe
        the dashboard's total already covers.

        Each probe adds 1 minute, so a total of base + n means n probes applied; probe i
        (in the order of their 201s) counts as seen once n > i. Exact when events are
        applied in the order the writes were acknowledged, as one stream and one consumer
        nearly always do.
        """
        sizes = self.sizes
        goal = user.goal_ids[0]
        base = (await api.dashboard(user))["total_minutes"]
        acked: list[float] = []
        lags: dict[int, float] = {}
        written = asyncio.Event()
        polls = 0
        poll_s: list[float] = []

        async def one_write() -> None:
            await api.post_log(user, goal, today_utc(), 1)
            acked.append(time.perf_counter())

        async def write() -> None:
            try:
                tasks = []
                for _ in range(probes):
                    tasks.append(asyncio.create_task(one_write()))
                    await asyncio.sleep(sizes.lag_probe_interval_s)
                await asyncio.gather(*tasks)
            finally:
                written.set()
                if on_written is not None:
                    await on_written()

        async def poll() -> None:
            nonlocal polls
            deadline: float | None = None
            while len(lags) < probes:
                asked = time.perf_counter()
                board = await api.dashboard(user)
                polls += 1
                now = time.perf_counter()
                poll_s.append(now - asked)
                applied = board["total_minutes"] - base
                for i in range(min(applied, len(acked))):
                    if i not in lags:
                        lags[i] = now - acked[i]
                if written.is_set():
                    deadline = deadline or now + sizes.lag_timeout_s
                    if now > deadline:
                        break

        started = time.perf_counter()
        await asyncio.gather(write(), poll())
        timeouts = probes - len(lags)
        ended = time.perf_counter()
        for i in range(probes):
            # Never seen: its lag is at least the time waited (a lower bound).
            lags.setdefault(i, ended - acked[i] if i < len(acked) else ended - started)
        summary = LatencySummary.of(list(lags.values()), timeouts, 1.0)
        reads = LatencySummary.of(poll_s, 0, 1.0)
        result = {
            "probes": probes,
            "method": f"open loop: a probe write every {sizes.lag_probe_interval_s * 1000:.0f} ms",
            "p50_ms": round(summary.p50_ms, 3),
            "p90_ms": round(summary.p90_ms, 3),
            "p99_ms": round(summary.p99_ms, 3),
            "max_ms": round(summary.max_ms, 3),
            "polls_per_probe": round(polls / probes, 2),
            "poll_ms_p50": round(reads.p50_ms, 3),
            "poll_ms_p99": round(reads.p99_ms, 3),
            "timeouts": timeouts,
            "p99_is_lower_bound": timeouts > 0,
        }
        log(
            f"  event lag under load p50 {summary.p50_ms:.1f} ms p99 {summary.p99_ms:.1f} ms "
            f"({probes} probes, {timeouts} not seen within {sizes.lag_timeout_s:.0f}s "
            "after the load)"
        )
        return result

    async def gateway_overhead(self, api: Api, user: User) -> None:
        """Direct and through the gateway, alternated over a few rounds (ABAB…), so a
        burst of load from elsewhere on the machine hits both sides alike; each side's
        figures are the median over its rounds (rps: all requests / all seconds)."""
        target = await self.pick_cheap_get(api, user)
        sizes = self.sizes
        by_concurrency: dict[str, dict[str, Any]] = {}
        for concurrency in (1, sizes.gateway_concurrency):
            rounds: dict[str, list[dict[str, Any]]] = {"direct": [], "gateway": []}
            for _ in range(sizes.gateway_rounds):
                for side in ("direct", "gateway"):
                    base = self.stack.url(target["service"]) if side == "direct" else None
                    rounds[side].append(
                        await self.cheap_get(
                            base or self.stack.gateway_url,
                            target["path"],
                            await api.fresh(user),
                            concurrency,
                        )
                    )
            row: dict[str, Any] = {}
            for side, runs in rounds.items():
                row[side] = figures = combine_rounds(runs)
                log(
                    f"  {side:8} c={concurrency:<3} p50 {figures['p50_ms']:.2f} ms  "
                    f"p99 {figures['p99_ms']:.2f} ms  {figures['rps']:.0f} rps  "
                    f"errors {figures['errors']}  (rounds' p50: "
                    + ", ".join(f"{r['p50_ms']:.2f}" for r in runs)
                    + ")"
                )
            row["overhead_p50_ms"] = round(row["gateway"]["p50_ms"] - row["direct"]["p50_ms"], 3)
            row["throughput_ratio"] = round(row["gateway"]["rps"] / row["direct"]["rps"], 3)
            by_concurrency[str(concurrency)] = row
        c1, cn = by_concurrency["1"], by_concurrency[str(sizes.gateway_concurrency)]
        self.results["gateway_overhead"] = {
            # Latency: at concurrency 1 (the hop's own cost, no queueing);
            # throughput: at full concurrency (what the gateway lets through).
            "direct_p50_ms": c1["direct"]["p50_ms"],
            "gateway_p50_ms": c1["gateway"]["p50_ms"],
            "direct_p99_ms": c1["direct"]["p99_ms"],
            "gateway_p99_ms": c1["gateway"]["p99_ms"],
            "direct_rps": cn["direct"]["rps"],
            "gateway_rps": cn["gateway"]["rps"],
            "overhead_p50_ms": c1["overhead_p50_ms"],
            "throughput_ratio": cn["throughput_ratio"],
            "request": f"GET {target['template']} ({target['service']})",
            "load_generator": "wrk" if loadgen.wrk_path() else "httpx-driver",
            "by_concurrency": by_concurrency,
        }

    def cpu_pids(self) -> dict[str, int]:
        """The services, and the embedded MongoDB when it is ours (a Python process too)."""
        pids = {name: self.stack.services[name].pid for name in SERVICES}
        for store in self.stack.stores:
            if "nx-27017" in store.name:
                pids["mongodb"] = store.pid
        return pids

    async def cheap_get(self, base: str, path: str, token: str, concurrency: int) -> dict[str, Any]:
        """One run, with the CPU time each service spent per request: unlike throughput,
        that is what a request costs whoever else is using the cores."""
        sizes = self.sizes
        pids = self.cpu_pids()
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        figures: dict[str, Any]
        if loadgen.wrk_path():
            figures = await loadgen.run_wrk(
                base + path, token, concurrency, sizes.gateway_duration_s, sizes.warmup_s
            )
            # The warm-up's requests cost CPU too: count them at the measured rate.
            requests = figures["count"] * (1 + sizes.warmup_s / max(figures["seconds"], 0.001))
        else:
            figures = await loadgen.run_driver(
                {
                    "mode": "get",
                    "base_url": base,
                    "path": path,
                    "tokens": [token],
                    "concurrency": concurrency,
                    "duration_s": sizes.gateway_duration_s,
                    "warmup_s": sizes.warmup_s,
                }
            )
            requests = figures["count"] * (1 + sizes.warmup_s / max(figures["seconds"], 0.001))
        figures["cpu_ms_per_request"] = {
            name: round(1000 * (cpu_seconds(pid) - before[name]) / max(requests, 1), 3)
            for name, pid in pids.items()
        }
        return figures

    async def pick_cheap_get(self, api: Api, user: User) -> dict[str, str]:
        """GET /auth/me if the auth service answers it directly, else GET /goals/{id}."""
        candidates = [
            {"service": "auth", "path": "/auth/me", "template": "/auth/me"},
            {
                "service": "tracking",
                "path": f"/goals/{user.goal_ids[0]}",
                "template": "/goals/{goal_id}",
            },
        ]
        async with httpx.AsyncClient(timeout=10.0) as direct:
            for candidate in candidates:
                url = self.stack.url(candidate["service"]) + candidate["path"]
                response = await direct.get(url, headers=user.headers)
                via_gateway = await api.client.get(candidate["path"], headers=user.headers)
                if response.status_code == 200 and via_gateway.status_code == 200:
                    return candidate
        raise RuntimeError("no authenticated GET answers 200 both directly and at the gateway")

    async def dashboard_flatness(self, api: Api, one_day: User, three_years: User) -> None:
        sizes = self.sizes
        today = today_utc()
        goal = three_years.goal_ids[0]
        days = [today - dt.timedelta(days=n) for n in range(sizes.history_days)]
        jobs = [
            (lambda d=d, m=m: api.post_log(three_years, goal, d, m))
            for d in days
            for m in range(10, 10 + sizes.logs_per_day)
        ]
        total_3y = sum(range(10, 10 + sizes.logs_per_day)) * len(days)
        started = time.perf_counter()
        await bounded(sizes.seed_concurrency, jobs)
        seed_s = time.perf_counter() - started
        for m in range(10, 10 + sizes.logs_per_day):
            await api.post_log(one_day, one_day.goal_ids[0], today, m)
        total_1d = sum(range(10, 10 + sizes.logs_per_day))
        catch_up = await self.wait_reflected(api, three_years, total_3y, sizes.drain_timeout_s)
        await self.wait_reflected(api, one_day, total_1d, sizes.drain_timeout_s)
        await asyncio.sleep(sizes.settle_s)

        samples: dict[str, list[float]] = {"1d": [], "3y": [], "streak 1d": [], "streak 3y": []}
        for _ in range(sizes.warmup_samples):
            for user in (one_day, three_years):
                await api.dashboard(user)
                await api.streak(user)
        for _ in range(sizes.dashboard_samples):
            # Interleaved, so any drift in the machine's load hits both users alike.
            for key, user in (("1d", one_day), ("3y", three_years)):
                started = time.perf_counter()
                await api.dashboard(user)
                samples[key].append(time.perf_counter() - started)
                started = time.perf_counter()
                await api.streak(user)
                samples[f"streak {key}"].append(time.perf_counter() - started)
        self.results["streak_flatness"] = flatness(samples["streak 1d"], samples["streak 3y"])
        one = LatencySummary.of(samples["1d"], 0, sum(samples["1d"]))
        three = LatencySummary.of(samples["3y"], 0, sum(samples["3y"]))
        self.results["dashboard_flatness"] = {
            "p50_ms_1_day": round(one.p50_ms, 3),
            "p50_ms_3_years": round(three.p50_ms, 3),
            "ratio": round(three.p50_ms / one.p50_ms, 3),
            "p99_ms_1_day": round(one.p99_ms, 3),
            "p99_ms_3_years": round(three.p99_ms, 3),
            "samples_each": sizes.dashboard_samples,
            "history_days": sizes.history_days,
            "history_logs": len(jobs),
            "seed_seconds": round(seed_s, 2),
            "seed_logs_per_s": round(len(jobs) / seed_s, 1),
            "analytics_catch_up_s": round(catch_up, 2),
        }
        log(
            f"  dashboard p50 1 day {one.p50_ms:.2f} ms, {sizes.history_days} days "
            f"{three.p50_ms:.2f} ms (seeded {len(jobs)} logs in {seed_s:.1f}s)"
        )

    async def event_lag(self, api: Api, user: User, probes: int) -> dict[str, Any]:
        """POST one log; from its 201, poll the dashboard with no pause until it shows."""
        goal = user.goal_ids[0]
        expected = (await api.dashboard(user))["total_minutes"]
        lags: list[float] = []
        polls = 0
        timeouts = 0
        for _ in range(probes):
            await api.fresh(user)
            await api.post_log(user, goal, today_utc(), 1)
            acked = time.perf_counter()
            expected += 1
            while True:
                board = await api.dashboard(user)
                polls += 1
                now = time.perf_counter()
                if board["total_minutes"] >= expected:
                    lags.append(now - acked)
                    break
                if now - acked > self.sizes.lag_timeout_s:
                    timeouts += 1
                    lags.append(now - acked)
                    break
        summary = LatencySummary.of(lags, timeouts, sum(lags))
        result = {
            "probes": probes,
            "p50_ms": round(summary.p50_ms, 3),
            "p90_ms": round(summary.p90_ms, 3),
            "p99_ms": round(summary.p99_ms, 3),
            "max_ms": round(summary.max_ms, 3),
            "polls_per_probe": round(polls / probes, 2),
            "timeouts": timeouts,
        }
        log(
            f"  event lag p50 {summary.p50_ms:.1f} ms p99 {summary.p99_ms:.1f} ms "
            f"({probes} probes, {timeouts} timeouts)"
        )
        return result

    async def write_path(self, api: Api, writers: list[User]) -> dict[str, Any]:
        sizes = self.sizes
        tokens = [await api.fresh(u) for u in writers]
        pids = self.cpu_pids()
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        figures = await loadgen.run_driver(
            {
                "mode": "post_logs",
                "base_url": self.stack.gateway_url,
                "tokens": tokens,
                "goal_ids": [u.goal_ids[0] for u in writers],
                "concurrency": sizes.write_concurrency,
                "duration_s": sizes.write_duration_s,
                "warmup_s": sizes.warmup_s,
            }
        )
        requests = figures["count"] * (1 + sizes.warmup_s / max(figures["seconds"], 0.001))
        figures["cpu_ms_per_request"] = {
            name: round(1000 * (cpu_seconds(pid) - before[name]) / max(requests, 1), 3)
            for name, pid in pids.items()
        }
        log(f"  CPU ms per write: {figures['cpu_ms_per_request']}")
        log(
            f"  write c={sizes.write_concurrency} {figures['rps']:.0f} rps "
            f"p50 {figures['p50_ms']:.1f} ms p99 {figures['p99_ms']:.1f} ms "
            f"errors {figures['errors']}"
        )
        return {
            "rps": figures["rps"],
            "p50_ms": figures["p50_ms"],
            "p99_ms": figures["p99_ms"],
            "concurrency": sizes.write_concurrency,
            "users": len(writers),
            "cpu_ms_per_request": figures["cpu_ms_per_request"],
            "load_generator": "httpx-driver",
            "detail": figures,
        }


def _raise_on_term(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def combine_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median p50/p90/p99 over rounds; rps over all of them; every round kept."""
    count = sum(r["count"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {
        "count": count,
        "errors": sum(r["errors"] for r in runs),
        "seconds": round(seconds, 3),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 3),
        "p90_ms": round(statistics.median(r["p90_ms"] for r in runs), 3),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 3),
        "max_ms": max(r["max_ms"] for r in runs),
        "rps": round(count / seconds, 1) if seconds else None,
        "concurrency": runs[0]["concurrency"],
        "tool": runs[0]["tool"],
        "cpu_ms_per_request": {
            name: round(statistics.median(r["cpu_ms_per_request"][name] for r in runs), 3)
            for name in runs[0]["cpu_ms_per_request"]
        },
        "rounds": [{k: r[k] for k in ("p50_ms", "p99_ms", "rps")} for r in runs],
    }


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, same code paths")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results go")
    parser.add_argument(
        "--profile",
        default="",
        help="comma-separated services to sample with py-spy (e.g. gateway,analytics)",
    )
    parser.add_argument(
        "--profile-phase", default="", help="only this phase (e.g. write, gateway_overhead)"
    )
    parser.add_argument(
        "--phases",
        default="",
        help=f"run only these (comma-separated: {', '.join(PHASES)}); the rest report null",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every service (repeatable), e.g. a setting to try",
    )
    parser.add_argument(
        "--notes", type=Path, help="a Markdown file appended to latest.md (the analysis)"
    )
    parser.add_argument("--compare", type=Path, help="an earlier latest.json: before/after")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _raise_on_term)

    started_at = dt.datetime.now(dt.UTC)
    data_dir = Path(tempfile.mkdtemp(prefix="momentum-bench-"))
    namespace = f"bench{uuid.uuid4().hex[:8]}_"
    extra_env = {**BENCH_LIMITS, **dict(item.split("=", 1) for item in args.service_env)}
    stack = Stack(data_dir, namespace=namespace, persist_mongo=False, extra_env=extra_env)
    profiler = profiling.Profiler(
        stack, [s for s in args.profile.split(",") if s], args.profile_phase, args.out
    )
    phases = {p for p in args.phases.split(",") if p}
    if phases - set(PHASES):
        parser.error(f"unknown phase(s): {', '.join(sorted(phases - set(PHASES)))}")
    bench = Bench(stack, sizes, profiler, phases)
    t0 = time.perf_counter()
    pids: list[int] = []
    try:
        log(f"starting the stack ({'quick' if args.quick else 'full'} mode)")
        stack.start()
        pids = stack.pids()
        log(f"stack pids: {' '.join(map(str, pids))}")
        bench.results["phase_seconds"] = {"stack_start": round(time.perf_counter() - t0, 1)}
        asyncio.run(bench.run())
    except BaseException:
        log("failed; service logs follow")
        for name in SERVICES:
            path = stack.log_path(name)
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-15:]
                print(f"--- {name}\n" + "\n".join(tail), file=sys.stderr)
        raise
    finally:
        profiler.stop_all()
        loadgen.kill_all()
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        if stack.redis_url:
            with contextlib.suppress(Exception):
                asyncio.run(delete_namespace_keys(stack.redis_url, namespace))
    results = {
        **bench.results,
        "mode": "quick" if args.quick else "full",
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "machine": machine_info(stack),
        "load_generator": {
            "gateway_overhead": "wrk" if loadgen.wrk_path() else "httpx-driver",
            "write": "httpx-driver",
            "flows": "httpx (sequential probes in the bench process)",
        },
        "sizes": sizes.as_dict(),
        "service_env": sorted(extra_env),
    }
    json_path, md_path = write_results(results, args.out, compare=args.compare, notes=args.notes)
    log(f"wrote {json_path} and {md_path} in {results['total_seconds']}s")
    leftover = [pid for pid in pids if _alive(pid)]
    if leftover:
        log(f"processes still running: {leftover}")
        return 1
    return 0
