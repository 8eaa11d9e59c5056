import asyncio

import pytest
from momentum_libs.redis_client import redis_client
from momentum_libs.redis_urls import ClusterUrl, is_cluster_url
from momentum_libs.settings import StreamConsumerSettings
from momentum_libs.stores import free_port
from momentum_libs.stream_keys import has_hash_tag, hash_tag
from momentum_libs.testing.plugin import OwnRedis
from pydantic import ValidationError
from redis.asyncio import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError


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


def test_a_cluster_url_names_its_nodes_and_credentials() -> None:
    url = ClusterUrl.parse("rediss+cluster://ops:s%40cret@10.0.0.1:7000,[::1]:7001/0")
    assert url.nodes == [("10.0.0.1", 7000), ("::1", 7001)]
    assert (url.username, url.password, url.ssl) == ("ops", "s@cret", True)
    assert ClusterUrl.parse("redis+cluster://h:1").username is None
    assert is_cluster_url("redis+cluster://h:1") and not is_cluster_url("redis://h:1/0")


@pytest.mark.parametrize("url", ["redis+cluster://nohostport", "redis+cluster://h:port", "x://h:1"])
def test_a_malformed_cluster_url_is_refused_with_its_form(url: str) -> None:
    with pytest.raises(ValueError, match=r"host:port|redis\+cluster"):
        ClusterUrl.parse(url)


def test_hash_tags_as_redis_cluster_reads_them() -> None:
    assert hash_tag("{momentum.events}.dead.analytics") == "momentum.events"
    assert hash_tag("t1_{a}{b}") == "a"
    assert hash_tag("{}x") == "{}x" and not has_hash_tag("{}x")  # an empty tag is none
    assert hash_tag("momentum.events") == "momentum.events"
    assert not has_hash_tag("momentum.events") and has_hash_tag("{momentum.events}.p3")


async def test_on_a_cluster_a_client_routes_every_key_and_one_slot_takes_a_multi(
    redis_cluster_url: str, namespace: str
) -> None:
    client = redis_client(redis_cluster_url, 2000)
    assert isinstance(client, RedisCluster)
    stream = f"{namespace}{{events}}"
    try:
        keys = [f"{namespace}k{i}" for i in range(30)]
        for key in keys:
            await client.set(key, key)
        assert [await client.get(k) for k in keys] == [k.encode() for k in keys]
        # The keys really are spread: more than one master holds some.
        slots = {key: await client.cluster_keyslot(key) for key in keys}
        assert len({client.get_node_from_key(k).name for k in slots}) > 1
        async with client.pipeline(transaction=True) as pipe:
            pipe.xadd(stream, {"n": "1"})
            pipe.xadd(f"{stream}.dead.g", {"n": "1"})
            first, second = await pipe.execute()
        assert (await client.xlen(stream), await client.xlen(f"{stream}.dead.g")) == (1, 1)
        assert first and second
        await client.delete(*keys, stream, f"{stream}.dead.g")
    finally:
        await client.aclose()


async def test_an_unreachable_cluster_is_a_connection_error_like_one_node() -> None:
    client = redis_client(f"redis+cluster://127.0.0.1:{free_port()}", 500)

    async def pipelined() -> None:
        async with client.pipeline(transaction=False) as pipe:
            pipe.get("k")
            await pipe.execute()

    try:
        with pytest.raises(RedisConnectionError, match="Redis Cluster unreachable"):
            await client.ping()
        with pytest.raises(RedisConnectionError, match="Redis Cluster unreachable"):
            await pipelined()
    finally:
        await client.aclose()


class Consumer(StreamConsumerSettings):
    consumer_group: str = "g"
    consumer_name_prefix: str = "test"


def test_on_a_cluster_the_stream_needs_a_hash_tag_its_dead_letters_share() -> None:
    cluster = "redis+cluster://127.0.0.1:7000"
    assert Consumer(redis_url=cluster).dead_letters == "{momentum.events}.dead.g"
    with pytest.raises(ValidationError, match="has no hash tag"):
        Consumer(redis_url=cluster, events_stream="momentum.events")
    with pytest.raises(ValidationError, match="must share the event stream's hash tag"):
        Consumer(redis_url=cluster, dead_letter_stream="{other}.dead")
    # One node needs no slot: a stream name from before cluster mode still works there.
    assert Consumer(events_stream="momentum.events").dead_letters == "momentum.events.dead.g"
