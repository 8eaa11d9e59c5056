"""Load generators: wrk (a real one, for plain GETs) and the httpx driver (flows).

Every process started here is tracked by PID and stopped by :func:`stop_all`.
"""

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from momentum_libs.stores import _die_with_parent

from bench.driver import READY, DriverConfig

REPO = Path(__file__).resolve().parents[1]

_STARTED: set[asyncio.subprocess.Process] = set()

WRK_SCRIPT = r"""
local token = os.getenv("BENCH_TOKEN")
wrk.headers["Authorization"] = "Bearer " .. token
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\": %d, \"duration_us\": %d, \"status_errors\": %d, " ..
    "\"socket_errors\": %d, \"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, " ..
    "\"max_us\": %d}\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wrk_path() -> str | None:
    """wrk, unless BENCH_NO_WRK is set (to exercise the fallback)."""
    if os.environ.get("BENCH_NO_WRK"):
        return None
    return shutil.which("wrk")


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


async def _spawn(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
        preexec_fn=_die_with_parent,
    )
    _STARTED.add(proc)
    return proc


async def _finish(proc: asyncio.subprocess.Process, stdin: bytes | None = None) -> str:
    try:
        out, err = await proc.communicate(stdin)
    finally:
        _STARTED.discard(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator exited {proc.returncode}: {err.decode()[-2000:]}")
    return out.decode()


def kill_all() -> None:
    """Stop every load generator still running, by its PID (after a failure)."""
    for proc in list(_STARTED):
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
        _STARTED.discard(proc)


async def run_wrk(
    url: str, token: str, concurrency: int, duration_s: float, warmup_s: float
) -> dict[str, Any]:
    """GET url with wrk; latencies are wrk's own (microsecond histogram)."""
    wrk = wrk_path()
    assert wrk is not None
    threads = max(1, min(concurrency, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "auth.lua"
        script.write_text(WRK_SCRIPT)
        env = _child_env({"BENCH_TOKEN": token})

        async def once(seconds: float) -> str:
            args = [
                wrk, "-t", str(threads), "-c", str(concurrency),
                "-d", f"{max(1, math.ceil(seconds))}s", "--timeout", "10s",
                "-s", str(script), url,
            ]  # fmt: skip
            return await _finish(await _spawn(args, env))

        if warmup_s > 0:
            await once(warmup_s)
        out = await once(duration_s)
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    return {
        "count": raw["requests"],
        "errors": raw["status_errors"] + raw["socket_errors"],
        "seconds": round(seconds, 3),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "rps": round(raw["requests"] / seconds, 1) if seconds else math.nan,
        "concurrency": concurrency,
        "tool": "wrk",
    }


@dataclass
class Driver:
    """The httpx driver running in its own process."""

    proc: asyncio.subprocess.Process
    config: DriverConfig

    @classmethod
    async def start(cls, config: DriverConfig) -> "Driver":
        proc = await _spawn([sys.executable, "-m", "bench.driver"], _child_env())
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(config).encode())
        await proc.stdin.drain()
        proc.stdin.close()
        assert proc.stdout is not None
        # Its imports take a while: a caller measuring "under load" waits for the load.
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.decode().strip() != READY:
            await _finish(proc)
            raise RuntimeError(f"the driver did not start: {line!r}")
        return cls(proc, config)

    async def result(self) -> dict[str, Any]:
        out = await _finish(self.proc)
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        result["tool"] = "httpx-driver"
        return result

    async def stop(self) -> dict[str, Any]:
        """End the run now (SIGTERM) and return what it measured."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        return await self.result()


async def run_driver(config: DriverConfig) -> dict[str, Any]:
    driver = await Driver.start(config)
    return await driver.result()
