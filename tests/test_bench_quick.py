"""`python -m bench --quick` runs end to end and writes every key of the results.

A smoke check of the harness only: it asserts no figure (the machine running the
tests is busy with them; the figures come from `make bench`). So its services hash
passwords cheaply, as the test stacks do: registering the bench's users and draining
its login floods at production's cost was most of what this test waited for.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
from momentum_libs.testing.plugin import CHEAP_PASSWORD_HASHING

REPO = Path(__file__).resolve().parents[1]

KEYS = {
    "gateway_overhead": {
        "direct_p50_ms",
        "gateway_p50_ms",
        "direct_p99_ms",
        "gateway_p99_ms",
        "direct_rps",
        "gateway_rps",
    },
    "write": {"rps", "p50_ms", "p99_ms"},
    "dashboard_flatness": {"p50_ms_1_day", "p50_ms_3_years", "ratio"},
    "event_lag": {"p50_ms", "p99_ms", "p99_ms_under_load", "p99_ms_paced"},
    "rebuild": {"logs", "seconds", "logs_per_s"},
    "imports": {"logs", "status", "seconds", "logs_per_s", "again_seconds"},
    "memory_mb": {"gateway", "auth", "tracking", "analytics"},
}


def test_bench_quick_writes_every_key(tmp_path: Path) -> None:
    cheap_hashing = [
        f"--service-env={name}={value}" for name, value in CHEAP_PASSWORD_HASHING.items()
    ]
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path), *cheap_hashing],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        # A bound on a hang: --quick took 35 s alone and 73 s beside make test's workers.
        timeout=280,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    for section, keys in KEYS.items():
        assert section in data, section
        assert keys <= set(data[section]), (section, keys - set(data[section]))
    assert {"cores", "python"} <= set(data["machine"])
    assert set(CHEAP_PASSWORD_HASHING) <= set(data["service_env"])
    assert data["load_generator"]["gateway_overhead"] in {"wrk", "httpx-driver"}
    # The lag under load is split: analytics' share of events applied within each delay
    # (cumulative: never falling, all of them within the last bound the phase reached)
    # and the poller's own dashboard reads.
    under_load = data["event_lag"]["under_load"]
    shares = list(under_load["applied_within_s"].values())
    assert shares and shares == sorted(shares) and 0 < shares[-1] <= 1, shares
    assert 0 < under_load["poll_ms_p50"] <= under_load["poll_ms_p99"]
    assert "Where it goes:" in (tmp_path / "latest.md").read_text()
    # The paced phase ran at half the closed loop's rate, and kept under it: each worker
    # sends at most once per concurrency/rate seconds, so a window of T seconds holds at
    # most T * rate + concurrency requests (--quick's window is about 1 s: 49 at 43/s seen).
    paced = data["event_lag"]["under_paced_load"]["background_write"]
    assert paced["rate_per_s"] == under_load["background_write"]["rps"] / 2
    ceiling = paced["seconds"] * paced["rate_per_s"] + paced["concurrency"]
    assert 0 < paced["count"] + paced["errors"] <= ceiling, paced
    assert data["event_lag"]["p99_ms_paced"] > 0
    imported = data["imports"]
    assert (imported["status"], imported["again_status"]) == (200, 200)
    assert imported["created"] == imported["again_skipped"] == imported["logs"]
    assert (tmp_path / "latest.md").read_text().startswith("# Momentum benchmark results")
    # The bench stopped everything it started.
    line = next(x for x in result.stderr.splitlines() if "stack pids:" in x)
    pids = [int(p) for p in line.split("stack pids:")[1].split()]
    assert len(pids) >= 4
    assert not [p for p in pids if psutil.pid_exists(p) and not _zombie(p)]


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
