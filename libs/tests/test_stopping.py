"""``stop_together``: every child gets its SIGTERM before any is killed, and none is left."""

import os
import sys
import time
from pathlib import Path

from momentum_libs.stores import ManagedProcess, stop_together

# Ignores SIGTERM (a service slow to shut down); on receiving it, writes whether each pid
# listed in its arguments was still running, then waits for its SIGKILL.
STUBBORN = """
import os, signal, sys, time
report, others = sys.argv[1], [int(p) for p in sys.argv[2:]]
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
def on_term(signum, frame):
    with open(report, "w") as out:
        out.write(",".join(str(alive(pid)) for pid in others))
signal.signal(signal.SIGTERM, on_term)
open(report + ".ready", "w").close()
while True:
    time.sleep(0.05)
"""


def _stubborn(report: Path, others: list[int]) -> ManagedProcess:
    args = [sys.executable, "-c", STUBBORN, str(report), *map(str, others)]
    return ManagedProcess(report.name, args).start()


def _wait_ready(report: Path) -> None:
    ready = report.with_name(report.name + ".ready")
    while not ready.exists():
        time.sleep(0.01)


def test_each_child_is_signalled_while_the_others_still_run(tmp_path: Path) -> None:
    first = _stubborn(tmp_path / "first", [])
    _wait_ready(tmp_path / "first")
    # Stopped one after another, the second would get its SIGTERM after the first's kill.
    second = _stubborn(tmp_path / "second", [first.pid])
    _wait_ready(tmp_path / "second")
    pids = [first.pid, second.pid]

    # Both ignore SIGTERM, so the grace always runs out: 3 s leaves the second room to
    # run its handler beside make test's workers (0.5 s was a speed requirement).
    stop_together([first, second], grace_s=3)

    assert (tmp_path / "second").read_text() == "True"
    assert first.proc is None and second.proc is None
    for pid in pids:  # reaped: no such process any more
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"pid {pid} still runs")
