"""The Redis clients of every process, each wait bounded like MongoDB's (see mongo.py)."""

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from momentum_libs.metrics import TimedRedis


def redis_client(url: str, timeout_ms: int, *, block_ms: int = 0) -> Redis:
    """``block_ms``: the longest XREADGROUP BLOCK this client issues; its reads wait that
    much longer, or every idle block would time out.

    A command on a pooled connection the server closed (Redis restarted, an idle
    timeout) is sent once more on a fresh connection: ``from_url`` clients otherwise
    retry nothing, and after a Redis restart every stale connection in every pool
    failed one request (a 503) on its next use. Timeouts are not retried: a Redis that
    does not answer keeps costing one ``timeout_ms``, not two.

    Every command is timed (``momentum_store_duration_seconds``).
    """
    timeout_s = timeout_ms / 1000
    return TimedRedis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s + block_ms / 1000,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
    )
