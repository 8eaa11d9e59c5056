import asyncio

from momentum_libs.redis_client import redis_client
from momentum_libs.testing.plugin import OwnRedis


async def test_every_wait_is_bounded_and_a_blocking_reader_waits_its_block_longer() -> None:
    plain = redis_client("redis://127.0.0.1:6379/0", 500)
    reader = redis_client("redis://127.0.0.1:6379/0", 500, block_ms=1000)
    try:
        kwargs = plain.connection_pool.connection_kwargs
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (0.5, 0.5)
        kwargs = reader.connection_pool.connection_kwargs
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (0.5, 1.5)
    finally:
        await plain.aclose()
        await reader.aclose()


async def test_connections_a_redis_restart_closed_are_replaced_not_failed(
    own_redis: OwnRedis,
) -> None:
    client = redis_client(own_redis.url, 2000)
    try:
        # Fill the pool with several connections, then restart the server under them.
        assert await asyncio.gather(*(client.ping() for _ in range(5))) == [True] * 5
        own_redis.stop()
        own_redis.start()
        # Each stale connection is used once more: none of these may fail.
        assert await asyncio.gather(*(client.ping() for _ in range(5))) == [True] * 5
    finally:
        await client.aclose()
