"""The Redis clients of every process, each wait bounded like MongoDB's (see mongo.py)."""

from redis.asyncio import Redis


def redis_client(url: str, timeout_ms: int, *, block_ms: int = 0) -> Redis:
    """``block_ms``: the longest XREADGROUP BLOCK this client issues; its reads wait that
    much longer, or every idle block would time out."""
    timeout_s = timeout_ms / 1000
    return Redis.from_url(
        url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s + block_ms / 1000
    )
