"""`make up` runs the whole stack in the foreground; Ctrl-C (SIGINT) or SIGTERM leaves nothing."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest
from momentum_libs.stores import free_port

REPO = Path(__file__).resolve().parents[1]


def _wait_for_gateway(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"make up exited early with {proc.returncode}"
        try:
            response = httpx.get(f"{url}/health", timeout=1)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"gateway at {url} never became healthy")


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_make_up_serves_and_stops_everything(tmp_path: Path, stop_signal: int) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MOMENTUM_GATEWAY_PORT": str(port),
        "MOMENTUM_DATA_DIR": str(tmp_path / "data"),
    }
    # Its own process group, as a terminal would give it: Ctrl-C signals the whole group.
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "up"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        health = _wait_for_gateway(f"http://127.0.0.1:{port}", proc)
        assert health == {
            "status": "ok",
            "services": {"auth": "ok", "tracking": "ok", "analytics": "ok"},
        }
        started = _descendants(proc.pid)
        # make, uv, the stack runner, nx-27017 and four uvicorn services at least.
        assert len(started) >= 6, [p.cmdline() for p in started]
        # Ctrl-C in a terminal, or a supervisor's SIGTERM, reaches the whole process group.
        os.killpg(proc.pid, stop_signal)
        proc.wait(60)
        _gone, alive = psutil.wait_procs(started, timeout=15)
        assert alive == [], [p.cmdline() for p in alive]
        # The embedded MongoDB kept its data under the data dir.
        assert (tmp_path / "data" / "mongodb").is_dir()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
