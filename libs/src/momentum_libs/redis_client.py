"""The Redis clients of every process, each wait bounded like MongoDB's (see mongo.py).

``REDIS_URL`` picks the client: ``redis://`` (or ``rediss://``) a single node,
``redis+cluster://[user:password@]host:port[,host:port…]`` (or ``rediss+cluster://``,
the schemes the ``limits`` library reads) a Redis Cluster, reached through any of the
nodes listed. Nothing else builds a Redis client.
"""

from dataclasses import dataclass
from urllib.parse import unquote

import redis
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from momentum_libs.metrics import TimedRedis, TimedRedisCluster

RedisClient = Redis | RedisCluster
"""What every process talks to Redis through: one node or a cluster, the same commands."""

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


@dataclass(frozen=True)
class ClusterUrl:
    """A ``redis+cluster://`` URL's seed nodes and credentials."""

    nodes: list[tuple[str, int]]
    username: str | None
    password: str | None
    ssl: bool

    @classmethod
    def parse(cls, url: str) -> "ClusterUrl":
        """Raises ValueError, naming the URL's form, on anything else."""
        scheme, _, rest = url.partition("://")
        if scheme not in CLUSTER_SCHEMES:
            raise ValueError(f"not a Redis Cluster URL ({'|'.join(CLUSTER_SCHEMES)}://…)")
        location = rest.split("/", 1)[0].split("?", 1)[0]
        credentials, _, hosts = location.rpartition("@")
        username, _, password = credentials.partition(":")
        try:
            nodes = [_host_port(node) for node in hosts.split(",")]
        except ValueError:
            raise ValueError(
                "a Redis Cluster URL lists its nodes as host:port[,host:port…]"
            ) from None
        return cls(
            nodes,
            unquote(username) or None,
            unquote(password) or None,
            ssl=scheme == "rediss+cluster",
        )


def hash_tag(key: str) -> str | None:
    """The part of ``key`` Redis Cluster hashes to pick its slot (``{…}``), if any."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start < 0 or end < 0 or end == start + 1:
        return None
    return key[start + 1 : end]


def _host_port(node: str) -> tuple[str, int]:
    host, sep, port = node.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(node)
    return host.strip("[]"), int(port)


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
