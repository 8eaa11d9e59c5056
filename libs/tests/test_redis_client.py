from momentum_libs.redis_client import redis_client


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
