"""A stack that cannot start says why in its error, and leaves nothing running.

A CI run keeps pytest's output, not the services' log files, so the end of the failing
service's log must be in the exception itself.
"""

from pathlib import Path

import psutil
import pytest
from momentum_libs.devstack import Stack
from momentum_libs.testing.plugin import namespaced_stack, new_namespace


def test_a_service_that_exits_during_start_up_shows_the_end_of_its_log(
    tmp_path: Path, mongodb_url: str, redis_url: str
) -> None:
    missing_key = tmp_path / "no-such-key.pem"
    env = {"MOMENTUM_AUTH_SIGNING_KEY_FILE": str(missing_key)}
    started: list[Stack] = []

    with (
        pytest.raises(RuntimeError) as failure,
        namespaced_stack(tmp_path, mongodb_url, redis_url, new_namespace("s"), env) as stack,
    ):
        started.append(stack)

    message = str(failure.value)
    assert message.startswith("auth exited during start-up; see ")
    assert "it ends:" in message
    assert "MOMENTUM_AUTH_SIGNING_KEY_FILE cannot be read" in message
    assert not started
    leftovers = _processes_of_stack(tmp_path)
    assert not leftovers, f"processes of the failed stack still run: {leftovers}"


def _processes_of_stack(data_dir: Path) -> list[int]:
    """Processes still running with this stack's data dir in their environment."""
    wanted = str(data_dir.resolve())
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("MOMENTUM_DATA_DIR") == wanted:
                found.append(proc.pid)
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    return found
