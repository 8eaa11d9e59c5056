"""The Redis clients of every process, each wait bounded like MongoDB's (see mongo.py).

``REDIS_URL`` picks the client: ``redis://`` (or ``rediss://``) a single node,
``redis+cluster://[user:password@]host:port[,host:port…]`` (or ``rediss+cluster://``,
the schemes the ``limits`` library reads) a Redis Cluster, reached through any of the
nodes listed. Nothing else builds a Redis client.
"""

import time
from typing import Any

import redis
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, ClusterPipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException

from momentum_libs.metrics import REDIS_COMMANDS
from momentum_libs.redis_urls import ClusterUrl, is_cluster_url

RedisClient = Redis | RedisCluster
"""What every process talks to Redis through: one node or a cluster, the same commands."""


class TimedRedis(Redis):
    """A Redis client that times every command, and each pipeline as one ``pipeline``
    (or ``multi``) command: redis-py has no hook of its own outside OpenTelemetry."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        finally:
            REDIS_COMMANDS.observe(args[0], time.perf_counter() - started)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> "TimedPipeline":
        return TimedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class TimedPipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        started = time.perf_counter()
        try:
            return await super().execute(raise_on_error)
        finally:
            command = "multi" if self.is_transaction else "pipeline"
            REDIS_COMMANDS.observe(command, time.perf_counter() - started)


def _cluster_unreachable(client: RedisCluster, exc: RedisClusterException) -> Exception:
    """redis-py says "no node of the cluster answered" with a RedisClusterException, which
    is no RedisError: every caller's ``except (RedisError, OSError)`` (a 503, a retry)
    would miss it and a cluster outage would answer 500. While the client has no slot map
    (``_initialize``: none fetched yet, or dropped after a node failed), that is what it
    means; any other RedisClusterException (a command it cannot route) is a bug, kept."""
    if client._initialize:
        return RedisConnectionError(f"Redis Cluster unreachable: {exc}")
    return exc


class TimedRedisCluster(RedisCluster):
    """:class:`TimedRedis` for a Redis Cluster: the same series, whichever node answers."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().execute_command(*args, **options)
        except RedisClusterException as exc:
            raise _cluster_unreachable(self, exc) from exc
        finally:
            REDIS_COMMANDS.observe(args[0], time.perf_counter() - started)

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> "TimedClusterPipeline":
        if shard_hint:  # as RedisCluster.pipeline: a cluster routes by key, not by hint
            raise ValueError("shard_hint is not supported in cluster mode")
        return TimedClusterPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py


class TimedClusterPipeline(ClusterPipeline):
    async def initialize(self) -> "TimedClusterPipeline":
        """Entering ``async with`` fetches the slot map first: the same outage to say."""
        try:
            await super().initialize()
        except RedisClusterException as exc:
            raise _cluster_unreachable(self.cluster_client, exc) from exc
        return self

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        started = time.perf_counter()
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except RedisClusterException as exc:
            raise _cluster_unreachable(self.cluster_client, exc) from exc
        finally:
            command = "multi" if self._transaction else "pipeline"
            REDIS_COMMANDS.observe(command, time.perf_counter() - started)


def redis_client(url: str, timeout_ms: int, *, block_ms: int = 0) -> RedisClient:
    """``block_ms``: the longest XREADGROUP BLOCK this client issues; its reads wait that
    much longer, or every idle block would time out.

    A command on a pooled connection the server closed (Redis restarted, an idle
    timeout) is sent once more on a fresh connection: ``from_url`` clients otherwise
    retry nothing, and after a Redis restart every stale connection in every pool
    failed one request (a 503) on its next use. Timeouts are not retried: a Redis that
    does not answer keeps costing one ``timeout_ms``, not two. A cluster client also
    follows ``MOVED``/``ASK`` redirections itself (they are answers, not failures).

    Every command is timed (``momentum_store_duration_seconds``).
    """
    timeout_s = timeout_ms / 1000
    read_timeout_s = timeout_s + block_ms / 1000
    retry = Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,))
    if not is_cluster_url(url):
        return TimedRedis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=read_timeout_s, retry=retry
        )
    cluster = ClusterUrl.parse(url)
    return TimedRedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes],
        username=cluster.username,
        password=cluster.password,
        ssl=cluster.ssl,
        socket_connect_timeout=timeout_s,
        socket_timeout=read_timeout_s,
        retry=retry,
        # The cluster client's own retries would re-send a timed-out command too.
        retry_on_error=[RedisConnectionError],
    )


def sync_redis_client(url: str, timeout_s: float = 2.0) -> "redis.Redis | redis.RedisCluster":
    """A blocking client for tools and test fixtures, single node or cluster alike."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    cluster = ClusterUrl.parse(url)
    return redis.RedisCluster(
        startup_nodes=[
            redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in cluster.nodes
        ],
        username=cluster.username,
        password=cluster.password,
        ssl=cluster.ssl,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
    )
