"""Run the whole stack on one machine: the stores, the four services, the gateway.

``make up`` runs ``momentum-stack up`` in the foreground; the cross-service tests and
the benchmarks use :class:`Stack` directly. Every process it starts it stops, on
Ctrl-C, SIGTERM or a normal exit.
"""

import argparse
import fcntl
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

import httpx

from momentum_libs.cli import STACK_ENV
from momentum_libs.settings import EVENTS_STREAM
from momentum_libs.stores import (
    ManagedProcess,
    claim_ports,
    free_port,
    resolve_redis,
    start_nx_mongo,
    stop_together,
)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    app_factory: str
    env_prefix: str
    database: str | None


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("auth", "momentum_auth.main:create_app", "MOMENTUM_AUTH_", "momentum_auth"),
    ServiceSpec(
        "tracking", "momentum_tracking.main:create_app", "MOMENTUM_TRACKING_", "momentum_tracking"
    ),
    ServiceSpec(
        "analytics",
        "momentum_analytics.main:create_app",
        "MOMENTUM_ANALYTICS_",
        "momentum_analytics",
    ),
    ServiceSpec("gateway", "momentum_gateway.main:create_app", "MOMENTUM_GATEWAY_", None),
)


# Four processes import and create their indexes at once. Beside make test's workers on two
# cores, auth once went past 30 s (CI, twice in one run); a service that never answers still
# fails, with the end of its log in the error.
START_TIMEOUT_S = 60.0
# Enough of a log to show why a service did not come up, short enough to read in a failure.
LOG_TAIL_LINES = 20


class Stack:
    """The stack as child processes on 127.0.0.1.

    ``namespace`` prefixes database names and the event stream so that several stacks
    (tests, ``make up``, benchmarks) share one Redis and never see each other's data.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        gateway_port: int | None = None,
        gateway_host: str = "127.0.0.1",
        gateway_metrics_port: int | None = None,
        namespace: str = "",
        persist_mongo: bool = True,
        log_to_files: bool = True,
        extra_env: dict[str, str] | None = None,
        mongodb_url: str | None = None,
        redis_url: str | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.namespace = namespace
        self.persist_mongo = persist_mongo
        self.log_to_files = log_to_files
        self.gateway_host = gateway_host
        self.extra_env = extra_env or {}
        claim_ports(*(port for port in (gateway_port, gateway_metrics_port) if port))
        self.ports = {spec.name: free_port() for spec in SERVICES}
        self.ports["gateway"] = gateway_port or free_port()
        self.gateway_metrics_port = gateway_metrics_port or free_port()
        self.mongodb_url = mongodb_url or os.environ.get("MONGODB_URL", "")
        self.redis_url = redis_url or os.environ.get("REDIS_URL", "")
        self.stores: list[ManagedProcess] = []
        self.services: dict[str, ManagedProcess] = {}

    # -- addresses -------------------------------------------------------------------
    def url(self, name: str) -> str:
        host = "127.0.0.1"
        if name == "gateway" and self.gateway_host not in ("0.0.0.0", "::"):
            host = self.gateway_host
        return f"http://{host}:{self.ports[name]}"

    @property
    def gateway_url(self) -> str:
        return self.url("gateway")

    def metrics_url(self, name: str) -> str:
        """Where Prometheus scrapes a process: a service's own port, the gateway's listener."""
        if name == "gateway":
            return f"http://127.0.0.1:{self.gateway_metrics_port}/metrics"
        return f"{self.url(name)}/metrics"

    @property
    def events_stream(self) -> str:
        return f"{self.namespace}{EVENTS_STREAM}"

    def database(self, name: str) -> str:
        spec = next(s for s in SERVICES if s.name == name)
        assert spec.database is not None
        return f"{self.namespace}{spec.database}"

    def log_path(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> "Stack":
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self._start_stores()
            # Launched together, waited for in order: each process spends most of its start-up
            # importing, which the others can do meanwhile (no service needs another to start).
            launched = {spec.name: self._launch(spec.name) for spec in SERVICES}
            for name, proc in launched.items():
                self._wait_healthy(name, proc, timeout_s=START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_stores(self) -> None:
        if not self.mongodb_url:
            mongo_dir = self.data_dir / "mongodb" if self.persist_mongo else None
            self.mongodb_url, proc = start_nx_mongo(mongo_dir, log_dir=self.data_dir / "logs")
            self.stores.append(proc)
        if not self.redis_url:
            self.redis_url, redis_proc = resolve_redis(self.data_dir / "redis")
            if redis_proc is not None:
                self.stores.append(redis_proc)

    def env_for(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MONGODB_URL": self.mongodb_url,
                "REDIS_URL": self.redis_url,
                "MOMENTUM_EVENTS_STREAM": self.events_stream,
                "MOMENTUM_DATA_DIR": str(self.data_dir),
                "MOMENTUM_JWKS_URL": f"{self.url('auth')}/.well-known/jwks.json",
                "MOMENTUM_GATEWAY_AUTH_URL": self.url("auth"),
                "MOMENTUM_GATEWAY_TRACKING_URL": self.url("tracking"),
                "MOMENTUM_GATEWAY_ANALYTICS_URL": self.url("analytics"),
                "MOMENTUM_GATEWAY_METRICS_PORT": str(self.gateway_metrics_port),
            }
        )
        for spec in SERVICES:
            if spec.database:
                env[f"{spec.env_prefix}MONGODB_DB"] = self.database(spec.name)
        # analytics' rebuild (and its repair of trimmed events) reads tracking's database.
        env["MOMENTUM_ANALYTICS_TRACKING_MONGODB_DB"] = self.database("tracking")
        if self.namespace:
            # Login-failure and rate windows too: stacks sharing a Redis (tests, make up) all
            # come from 127.0.0.1 and must not add up toward one address limit.
            env["MOMENTUM_AUTH_REDIS_KEY_PREFIX"] = f"{self.namespace}momentum:auth:"
            env["MOMENTUM_GATEWAY_REDIS_KEY_PREFIX"] = f"{self.namespace}momentum:gateway:"
        env.update(self.extra_env)
        return env

    def start_service(self, name: str, timeout_s: float = START_TIMEOUT_S) -> None:
        self._wait_healthy(name, self._launch(name), timeout_s)

    def start_replica(
        self, name: str, env: dict[str, str] | None = None, timeout_s: float = START_TIMEOUT_S
    ) -> str:
        """One more process of service ``name``, on a port of its own with the same settings
        (``env`` added; the gateway still routes to the first); stopped with the stack.
        Returns its name in ``services``: ``<name>#2``, ``<name>#3``…"""
        replica = f"{name}#{sum(1 for n in self.services if n.split('#')[0] == name) + 1}"
        self.ports[replica] = free_port()
        self._wait_healthy(replica, self._launch(name, replica, env), timeout_s)
        return replica

    def _launch(
        self, name: str, replica: str | None = None, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        spec = next(s for s in SERVICES if s.name == name)
        key = replica or name
        args = [
            sys.executable, "-m", "uvicorn", "--factory", spec.app_factory,
            "--host", self.gateway_host if name == "gateway" else "127.0.0.1",
            "--port", str(self.ports[key]),
            "--no-access-log", "--timeout-graceful-shutdown", "5", "--no-server-header",
        ]  # fmt: skip
        if name == "gateway":  # the edge: a client's own X-Forwarded-For is not its address
            args.append("--no-proxy-headers")
        log_path = self.log_path(key) if self.log_to_files else None
        proc_env = {**self.env_for(name), **(env or {})}
        proc = ManagedProcess(key, args, env=proc_env, log_path=log_path).start()
        self.services[key] = proc
        return proc

    def _where_its_output_is(self, name: str) -> str:
        # Without log files (make up) a service writes to this terminal.
        if not self.log_to_files:
            return "see its output above"
        # The log's end goes into the error: a CI run keeps the output, not the files.
        path = self.log_path(name)
        try:
            lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return f"see {path} (not readable)"
        tail = "\n".join(f"  | {line}" for line in lines) or "  | (empty)"
        return f"see {path}; it ends:\n{tail}"

    def _wait_healthy(self, name: str, proc: ManagedProcess, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not proc.running():
                where = self._where_its_output_is(name)
                raise RuntimeError(f"{name} exited during start-up; {where}")
            try:
                if httpx.get(f"{self.url(name)}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        where = self._where_its_output_is(name)
        raise TimeoutError(f"{name} not healthy after {timeout_s}s; {where}")

    def kill_service(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.services[name]
        proc.signal(sig)
        assert proc.proc is not None
        proc.proc.wait(10)

    def restart_service(self, name: str) -> None:
        self.services[name].stop()
        self.start_service(name)

    def stack_env(self) -> dict[str, str]:
        """What a tool needs to reach this stack: its stores, streams, databases, services."""
        env = self.env_for("analytics")
        wanted = {
            "MONGODB_URL",
            "REDIS_URL",
            "MOMENTUM_EVENTS_STREAM",
            "MOMENTUM_EVENTS_PARTITIONS",
            "MOMENTUM_DATA_DIR",
        }
        found = {k: v for k, v in env.items() if k in wanted or k.endswith("_MONGODB_DB")}
        for spec in SERVICES:
            found[f"MOMENTUM_{spec.name.upper()}_URL"] = self.url(spec.name)
            found[f"MOMENTUM_{spec.name.upper()}_METRICS_URL"] = self.metrics_url(spec.name)
        return found

    def pids(self) -> list[int]:
        return [p.pid for p in [*self.stores, *self.services.values()] if p.running()]

    def stop(self) -> None:
        # The services before the stores: they close their connections on the way out.
        stop_together(reversed(list(self.services.values())))
        stop_together(reversed(self.stores))

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()


class StackRefusedError(Exception):
    """``make up`` cannot start here; the message is the one line to print."""


def hold_data_dir(data_dir: Path) -> TextIO:
    """An exclusive lock on the data dir for as long as this process runs (released by the
    kernel however it ends): two stacks on one embedded MongoDB would corrupt it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / "stack.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise StackRefusedError(
            f"another `make up` is running on the data dir {data_dir}; stop it first "
            "(or set MOMENTUM_DATA_DIR to another directory)"
        ) from None
    return lock


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise StackRefusedError(
                f"{host}:{port} is taken by another program; stop it first "
                "(or set MOMENTUM_GATEWAY_PORT to another port)"
            ) from None


def write_stack_env(stack: Stack) -> Path:
    path = stack.data_dir / STACK_ENV
    lines = [f"{key}={value}" for key, value in sorted(stack.stack_env().items())]
    path.write_text(
        "# Written by `make up` while it runs: the stack's addresses.\n" + "\n".join(lines) + "\n"
    )
    return path


def _up(args: argparse.Namespace) -> int:
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    data_dir = Path(args.data_dir).resolve()
    try:
        lock = hold_data_dir(data_dir)
        _check_port_free(args.host, args.port)
    except StackRefusedError as refused:
        print(f"momentum-stack: {refused}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stack = Stack(
        data_dir,
        gateway_port=args.port,
        gateway_host=args.host,
        gateway_metrics_port=args.metrics_port,
        log_to_files=False,
    )
    stack_env = data_dir / STACK_ENV
    try:
        stack.start()
        write_stack_env(stack)
        url = f"http://{args.host}:{args.port}"
        print(f"\nMomentum is up: {url}  (docs: {url}/docs)", flush=True)
        print(f"MongoDB {stack.mongodb_url}  Redis {stack.redis_url}", flush=True)
        print(f"Gateway metrics: {stack.metrics_url('gateway')}", flush=True)
        print(f"Addresses for the tools: {stack_env}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        while not stop_requested.wait(0.5):
            dead = [n for n, p in stack.services.items() if not p.running()]
            if dead:
                print(f"service(s) exited: {', '.join(dead)}; stopping", file=sys.stderr)
                return 1
        return 0
    except (RuntimeError, TimeoutError) as failed:
        print(f"momentum-stack: {failed}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        stack_env.unlink(missing_ok=True)
        lock.close()
        print("Momentum stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="momentum-stack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole stack in the foreground")
    up.add_argument(
        "--port", type=int, default=int(os.environ.get("MOMENTUM_GATEWAY_PORT", "8000"))
    )
    up.add_argument("--data-dir", default=os.environ.get("MOMENTUM_DATA_DIR", ".data"))
    up.add_argument(
        "--host",
        default=os.environ.get("MOMENTUM_GATEWAY_HOST", "127.0.0.1"),
        help="the gateway's bind address (the services stay on 127.0.0.1)",
    )
    up.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("MOMENTUM_GATEWAY_METRICS_PORT", "0")) or None,
        help="the gateway's metrics listener (on 127.0.0.1; default: a free port)",
    )
    args = parser.parse_args(argv)
    return _up(args)


if __name__ == "__main__":
    raise SystemExit(main())
