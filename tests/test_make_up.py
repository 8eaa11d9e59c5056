"""`make up` runs the whole stack in the foreground; Ctrl-C (SIGINT) or SIGTERM leaves nothing."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
from momentum_libs.stores import free_port
from momentum_libs.testing.waiting import eventually_blocking

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


def _make_up(port: int, data_dir: Path) -> "subprocess.Popen[bytes]":
    """`make up` in its own process group, as a terminal would give it: Ctrl-C signals the
    whole group."""
    env = {**os.environ, "MOMENTUM_GATEWAY_PORT": str(port), "MOMENTUM_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        ["make", "--no-print-directory", "up"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _serving(port: int, proc: "subprocess.Popen[bytes]") -> list[psutil.Process]:
    """Waits until the whole stack answers; its processes."""
    health = _wait_for_gateway(f"http://127.0.0.1:{port}", proc)
    assert health == {
        "status": "ok",
        "services": {"auth": "ok", "tracking": "ok", "analytics": "ok"},
    }
    started = _descendants(proc.pid)
    # make, uv, the stack runner, nx-27017 and four uvicorn services at least.
    assert len(started) >= 6, [p.cmdline() for p in started]
    return started


def _stop_leaves_nothing(
    proc: "subprocess.Popen[bytes]", started: list[psutil.Process], stop_signal: int, data: Path
) -> None:
    # Ctrl-C in a terminal, or a supervisor's SIGTERM, reaches the whole process group.
    os.killpg(proc.pid, stop_signal)
    proc.wait(60)
    _gone, alive = psutil.wait_procs(started, timeout=15)
    assert alive == [], [p.cmdline() for p in alive]
    # The embedded MongoDB kept its data under the data dir.
    assert (data / "mongodb").is_dir()
    assert not (data / "stack.env").exists()  # gone with the stack it described


def _kill_if_running(proc: "subprocess.Popen[bytes]") -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_make_up_stops_everything_on_sigterm(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "data"
    proc = _make_up(port, data_dir)
    try:
        started = _serving(port, proc)
        _stop_leaves_nothing(proc, started, signal.SIGTERM, data_dir)
    finally:
        _kill_if_running(proc)


def test_make_up_refuses_a_second_on_its_port_or_data_dir_and_stops_everything_on_ctrl_c(
    tmp_path: Path,
) -> None:
    """One stack for both: a second `make up` refused while it serves, then Ctrl-C."""
    port, data_dir = free_port(), tmp_path / "data"
    first = _make_up(port, data_dir)
    try:
        started = _serving(port, first)
        # Written right after the last service answered, before "up" is announced.
        env_file = data_dir / "stack.env"
        assert eventually_blocking(env_file.exists, timeout_s=30), "no stack.env"
        stack_env = env_file.read_text()
        assert f"MOMENTUM_GATEWAY_URL=http://127.0.0.1:{port}" in stack_env
        assert "MONGODB_URL=mongodb://" in stack_env
        pids_before = {p.pid for p in _descendants(first.pid)}

        for second_port, second_dir, says in (
            (port, tmp_path / "other-data", f"127.0.0.1:{port} is taken"),
            (free_port(), data_dir, "another `make up` is running on the data dir"),
        ):
            _assert_refused(second_port, second_dir, says)
        # The first stack is untouched: same processes, still healthy.
        assert {p.pid for p in _descendants(first.pid)} == pids_before
        _wait_for_gateway(f"http://127.0.0.1:{port}", first, timeout_s=30)
        _stop_leaves_nothing(first, started, signal.SIGINT, data_dir)
    finally:
        _kill_if_running(first)


def _assert_refused(port: int, data_dir: Path, says: str) -> None:
    second = subprocess.run(
        ["make", "--no-print-directory", "up"],
        cwd=REPO,
        env={
            **os.environ,
            "MOMENTUM_GATEWAY_PORT": str(port),
            "MOMENTUM_DATA_DIR": str(data_dir),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    refusal = [line for line in second.stderr.splitlines() if "momentum-stack:" in line]
    assert len(refusal) == 1 and says in refusal[0], second.stderr
    assert "Traceback" not in second.stderr
    # Refused before anything was started (so at once: timed by hand, not here).
    assert "is up" not in second.stdout
    assert "Momentum stopped" not in second.stdout
