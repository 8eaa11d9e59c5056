"""The asyncio httpx load driver: N concurrent workers for a fixed time, closed-loop, or
paced to a total rate (``rate_per_s``: each worker keeps to its share of a schedule).

Run as its own process (``python -m bench.driver`` reading a JSON config on stdin and
printing a JSON result), so the bench's own event loop never skews what it measures
and a background load can run beside a foreground probe. SIGTERM ends the run early
and still prints the result.
"""

import asyncio
import contextlib
import datetime as dt
import json
import random
import signal
import sys
import time
from collections import Counter
from typing import Any, TypedDict

import httpx

from bench.stats import LatencySummary

READY = "driver-ready"


class DriverConfig(TypedDict, total=False):
    mode: str  # "get" (a fixed path), "post_logs" (POST /daily-logs) or "login_bursts"
    base_url: str
    path: str
    tokens: list[str]
    goal_ids: list[str]  # post_logs: one per token
    concurrency: int
    rate_per_s: float  # get/post_logs: the workers' total pace; absent: as fast as answered
    duration_s: float
    warmup_s: float
    days_back: int  # post_logs: dates spread over the last N days
    expect_status: int
    credentials: dict[str, str]  # login_bursts: the account every login names


class _Pace:
    """One worker's share of a paced load: at most ``per_s`` sends a second. A worker that
    falls behind (a slow answer) sends at once and starts its schedule again from there, so
    the pace is a ceiling: no burst to catch up."""

    def __init__(self, per_s: float, offset_s: float) -> None:
        self.interval_s = 1 / per_s
        self.next_at = time.perf_counter() + offset_s  # the workers' turns spread out

    async def wait(self) -> None:
        await asyncio.sleep(self.next_at - time.perf_counter())
        self.next_at = max(self.next_at, time.perf_counter()) + self.interval_s


async def _run(config: DriverConfig) -> dict[str, Any]:
    mode = config["mode"]
    concurrency = config.get("concurrency", 1)
    tokens = config["tokens"]
    goal_ids = config.get("goal_ids", [])
    expect = config.get("expect_status", 201 if mode == "post_logs" else 200)
    days_back = config.get("days_back", 14)
    path = config.get("path", "/daily-logs")
    today = dt.datetime.now(dt.UTC).date()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    recording = False
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=config["base_url"], limits=limits, timeout=30.0
    ) as client:
        rate = config.get("rate_per_s")

        async def worker(index: int) -> None:
            rng = random.Random(index)
            pace = _Pace(rate / concurrency, offset_s=index / rate) if rate else None
            i = index
            while not stop.is_set():
                if pace:
                    await pace.wait()
                slot = i % len(tokens)
                i += concurrency
                headers = {"Authorization": f"Bearer {tokens[slot]}"}
                start = time.perf_counter()
                try:
                    if mode == "post_logs":
                        day = today - dt.timedelta(days=rng.randrange(days_back))
                        body = {
                            "goal_id": goal_ids[slot],
                            "date": day.isoformat(),
                            "minutes": rng.randint(5, 90),
                        }
                        response = await client.post(path, json=body, headers=headers)
                    else:
                        response = await client.get(path, headers=headers)
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                elapsed = time.perf_counter() - start
                if recording:
                    statuses[status] += 1
                    if status == str(expect):
                        latencies.append(elapsed)

        async def login(_: int) -> None:
            body = config["credentials"]
            with contextlib.suppress(asyncio.BrokenBarrierError):
                while not stop.is_set():
                    start = time.perf_counter()
                    try:
                        status = str((await client.post(path, json=body)).status_code)
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    if recording:
                        statuses[status] += 1
                        if status == str(expect):
                            latencies.append(time.perf_counter() - start)
                    await barrier.wait()  # a burst: all of them at once, again and again

        barrier = asyncio.Barrier(concurrency)
        run = login if mode == "login_bursts" else worker
        tasks = [asyncio.create_task(run(n)) for n in range(concurrency)]
        sys.stdout.write(READY + "\n")
        sys.stdout.flush()
        warmup = config.get("warmup_s", 0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), warmup)
        recording = True
        started = time.perf_counter()
        cpu_started = time.process_time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), config.get("duration_s", 10.0))
        recording = False
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        stop.set()
        # The run is over: a SIGTERM that arrives now ("end early") must not kill the
        # process before it prints what it measured (the loop's teardown would restore
        # the default action; a caller's stop() can race the end of duration_s).
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        await barrier.abort()
        await asyncio.gather(*tasks, return_exceptions=True)

    errors = sum(n for s, n in statuses.items() if s != str(expect))
    summary = LatencySummary.of(latencies, errors, seconds)
    sent = max(sum(statuses.values()), 1)
    return {
        **summary.as_dict(),
        "statuses": dict(statuses),
        "concurrency": concurrency,
        "rate_per_s": rate,
        # The driver's own cost: CPU it took from the machine the services run on.
        "driver_cpu_ms_per_request": round(1000 * cpu_seconds / sent, 3),
    }


def main() -> int:
    config: DriverConfig = json.loads(sys.stdin.read())
    try:
        import uvloop

        result = uvloop.run(_run(config))
    except ImportError:
        result = asyncio.run(_run(config))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
