"""Hardening fixtures: a private stack whose stores a test may stop, and small helpers.

The session ``stack`` (tests/conftest.py, libs' pytest plugin) is shared by every
cross-service test and is never disturbed here. Fault tests use ``own_stack``: its
own Redis and its own nx-27017, each stopped and started again on the same port with
its data kept, so "Redis down" or "MongoDB restart" is a real outage of a real server.
"""

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from momentum_libs.devstack import Stack
from momentum_libs.stores import ManagedProcess, free_port, redis_server_binary, wait_for_port
from momentum_libs.testing.plugin import CHEAP_PASSWORD_HASHING, STACK_REFRESH_GRACE_S, OwnMongo
from momentum_libs.testing.waiting import eventually_blocking

from ..conftest import Account, new_account

T = TypeVar("T")

# The gateway's upstream read timeout is 15 s (MOMENTUM_GATEWAY_READ_TIMEOUT_SECONDS);
# a client waiting longer than this has met a request that hangs.
CLIENT_TIMEOUT_S = 20.0
# The one browser origin the private stack's gateway allows (the session stack allows none).
CORS_ORIGIN = "https://app.momentum.example"


class PersistentRedis:
    """A private redis-server with an append-only file: a restart keeps every key and stream.

    That is how Redis runs in production (AOF on), so "Redis down for 10 s" means the
    server is unreachable and comes back with its data, not that the data is wiped.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: ManagedProcess | None = None
        self.start()

    def start(self) -> None:
        args = [
            redis_server_binary(),
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--dir", str(self.workdir),
        ]  # fmt: skip
        log = self.workdir / f"redis-{self.port}.log"
        self._proc = ManagedProcess(f"redis :{self.port}", args, log_path=log).start()
        assert self._proc.proc is not None
        wait_for_port(self.port, proc=self._proc.proc)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None


class OwnStack:
    """The stack on stores of its own, and the handles to stop and start those stores."""

    def __init__(self, stack: Stack, redis: PersistentRedis, mongo: OwnMongo) -> None:
        self.stack = stack
        self.redis = redis
        self.mongo = mongo

    def service_pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.stack.services.items()}


@pytest.fixture(scope="package")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    root = tmp_path_factory.mktemp("hardening")
    redis = PersistentRedis(root / "redis")
    mongo: OwnMongo | None = None
    stack: Stack | None = None
    try:
        mongo = OwnMongo(root / "mongo" / "data")
        stack = Stack(
            root / "stack",
            namespace=f"h{uuid.uuid4().hex[:8]}_",
            mongodb_url=mongo.url,
            redis_url=redis.url,
            log_to_files=True,
            # DEBUG: the log-secrets test searches the most a service can ever write.
            extra_env={
                **CHEAP_PASSWORD_HASHING,
                "MOMENTUM_GATEWAY_CORS_ORIGINS": CORS_ORIGIN,
                "MOMENTUM_LOG_LEVEL": "DEBUG",
                "MOMENTUM_AUTH_REFRESH_REUSE_GRACE_SECONDS": str(STACK_REFRESH_GRACE_S),
                # A service that is up must say "ok" in GET /health beside make test's
                # workers too (1 s by default); a killed or stopped one is down either way.
                "MOMENTUM_GATEWAY_HEALTH_TIMEOUT_SECONDS": "5",
            },
        ).start()
        yield OwnStack(stack, redis, mongo)
    finally:
        if stack is not None:
            stack.stop()
        if mongo is not None:
            mongo.stop()
        redis.stop()


@pytest.fixture
def own_gateway(own_stack: OwnStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=own_stack.stack.gateway_url, timeout=CLIENT_TIMEOUT_S) as client:
        yield client


def today() -> date:
    return datetime.now(UTC).date()


def wait_for(
    what: str, probe: Callable[[], T | None], timeout_s: float = 30.0, every_s: float = 0.25
) -> T:
    """Poll ``probe`` until it returns something not None; fail after ``timeout_s``."""
    found = eventually_blocking(
        probe, lambda value: value is not None, timeout_s=timeout_s, interval_s=every_s
    )
    assert found is not None, f"timed out after {timeout_s}s waiting for {what}"
    return found


def create_goal(client: httpx.Client, account: Account, title: str = "Ship it") -> str:
    response = client.post("/goals", json={"title": title}, headers=account.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def all_pages(client: httpx.Client, path: str, headers: dict[str, str]) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


__all__ = ["Account", "new_account"]
