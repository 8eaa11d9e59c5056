"""Optional py-spy sampling of services during a phase (``--profile gateway,analytics``).

Writes ``<out>/profiles/<service>-<phase>.txt`` (py-spy's collapsed stacks) and a
``.summary.txt`` beside it: the functions with the most samples, on top (self) and
anywhere on the stack (inclusive). Idle samples (the event loop waiting) are left out.
"""

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from momentum_libs.devstack import Stack


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Profiler:
    def __init__(self, stack: Stack, services: list[str], only_phase: str, out: Path) -> None:
        self.stack = stack
        self.services = services
        self.only_phase = only_phase
        self.dir = out / "profiles"
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def pid(self, service: str) -> int:
        """A service's PID; ``mongodb`` is the embedded nx-27017 (a Python process too)."""
        if service == "mongodb":
            mongo = [p for p in self.stack.stores if "nx-27017" in p.name]
            if not mongo:
                raise RuntimeError("no embedded MongoDB to profile (MONGODB_URL is set)")
            return mongo[0].pid
        return self.stack.services[service].pid

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if not self.services or (self.only_phase and self.only_phase != name):
            yield
            return
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed (make install)")
        self.dir.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            path = self.dir / f"{service}-{name}.txt"
            args = [
                binary, "record", "--pid", str(self.pid(service)),
                "--format", "raw", "--function", "--rate", "250", "--nonblocking",
                "--output", str(path),
            ]  # fmt: skip
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.running.append((proc, path))
        try:
            yield
        finally:
            self.stop_all()

    def stop_all(self) -> None:
        for proc, path in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if path.exists():
                path.with_suffix(".summary.txt").write_text(summarize(path))
        self.running.clear()


def summarize(path: Path, top: int = 30) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{path.name}: {total} samples", "", "self:"]
    lines += [f"{n:7} {100 * n / max(total, 1):5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [
        f"{n:7} {100 * n / max(total, 1):5.1f}%  {f}" for f, n in inclusive.most_common(top * 2)
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(summarize(Path(arg)))
