"""The partitioned log's throughput: events/s through the pipeline at P = 8 with one and
with two analytics consumer replicas.

A stack of its own (on the main run's stores, its own namespace) with
``MOMENTUM_EVENTS_PARTITIONS=8``; its first analytics process serves reads only. For each
replica count: the log is set to ``draining`` (the relays publish nothing), the replicas
are started and wait until they have split the eight partitions, ``events`` log writes go
through the gateway (their events wait in tracking's outbox), then the log's count is
recorded again; the clock runs from the first of them in a partition (the relays look at
the count once a second) until the analytics group has acknowledged every entry of every
partition: the relay's publishing and the consumers' handling, the whole backlog at once.
"""

import asyncio
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from momentum_libs.devstack import Stack
from momentum_libs.partitions import DRAINING, partition_streams, partitions_key
from momentum_libs.redis_client import sync_redis_client

from bench.api import Api, User, bounded, today_utc
from bench.monitor import delete_namespace_keys

P = 8
USERS = 24
LEASE_MS = 1500  # a replica's share settles within half a second
CONSUMER_COUNTS = (1, 2)


def _env() -> dict[str, str]:
    return {
        "MOMENTUM_EVENTS_PARTITIONS": str(P),
        "MOMENTUM_ANALYTICS_CONSUMER_ENABLED": "false",  # the replicas below consume
        "MOMENTUM_ANALYTICS_CONSUMER_LEASE_MS": str(LEASE_MS),
        "MOMENTUM_TRACKING_CONSUMER_LEASE_MS": str(LEASE_MS),
        "MOMENTUM_GATEWAY_CLIENT_MAX_IN_FLIGHT": "1024",
        "MOMENTUM_GATEWAY_RATE_LIMIT_REQUESTS": "1000000000",
        # Cheap password hashes: the phase measures events, not registrations.
        "MOMENTUM_AUTH_ARGON2_TIME_COST": "1",
        "MOMENTUM_AUTH_ARGON2_MEMORY_COST_KIB": "8192",
        "MOMENTUM_AUTH_ARGON2_PARALLELISM": "1",
    }


class Log:
    """The stack's partitions as Redis shows them (a blocking client: the bench waits)."""

    def __init__(self, stack: Stack) -> None:
        self.client: Any = sync_redis_client(stack.redis_url)
        self.base = stack.events_stream
        self.partitions = partition_streams(stack.events_stream, P)

    def owners(self) -> set[str | None]:
        keys = [f"{p}.owner.analytics" for p in self.partitions]
        return {None if v is None else v.decode() for v in (self.client.get(k) for k in keys)}

    def length(self) -> int:
        return sum(int(self.client.xlen(p)) for p in self.partitions)

    def acked_all(self) -> bool:
        for partition in self.partitions:
            if not self.client.exists(partition):
                continue
            groups = self.client.xinfo_groups(partition)
            mine = next((g for g in groups if g["name"] == b"analytics"), None)
            last = self.client.xinfo_stream(partition)["last-generated-id"]
            if mine is None or mine["pending"] or mine["last-delivered-id"] != last:
                return False
        return True

    def record(self, value: str | int) -> None:
        self.client.set(partitions_key(self.base), value)


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"partitions phase: {what} not within {timeout_s}s")
        time.sleep(0.02)


async def _burst(api: Api, users: list[User], events: int) -> None:
    rng = random.Random(events)
    day = today_utc()
    jobs = [
        lambda u=users[i % len(users)]: api.post_log(u, u.goal_ids[0], day, rng.randint(1, 60))
        for i in range(events)
    ]
    await bounded(16, jobs)


async def _one_count(
    stack: Stack, log: Log, api: Api, users: list[User], n: int, events: int
) -> dict[str, Any]:
    log.record(DRAINING)
    await asyncio.sleep(2)  # a relay pass in flight may still publish
    replicas = [
        stack.start_replica("analytics", {"MOMENTUM_ANALYTICS_CONSUMER_ENABLED": "true"})
        for _ in range(n)
    ]
    _wait(lambda: log.acked_all(), 60, "the earlier events applied")
    _wait(lambda: None not in (o := log.owners()) and len(o) == n, 30, f"{n} replicas' shares")
    before = log.length()
    await _burst(api, users, events)
    log.record(P)
    _wait(lambda: log.length() > before, 30, "the relays publishing again")
    started = time.perf_counter()
    _wait(lambda: log.length() >= before + events and log.acked_all(), 300, "the backlog applied")
    seconds = time.perf_counter() - started
    for name in replicas:
        stack.services[name].stop()
    return {
        "events": events,
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds, 1),
    }


async def measure(main: Stack, events: int, say: Callable[[str], None]) -> dict[str, Any]:
    """``events`` writes per replica count; the figures of each."""
    data_dir = Path(tempfile.mkdtemp(prefix="momentum-bench-partitions-"))
    namespace = f"{main.namespace}p8_"
    stack = Stack(
        data_dir,
        namespace=namespace,
        mongodb_url=main.mongodb_url,
        redis_url=main.redis_url,
        persist_mongo=False,
        extra_env=_env(),
    )
    try:
        say(f"partitions: a stack at P = {P}")
        stack.start()
        log = Log(stack)
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
            api = Api(client)
            users = await bounded(4, [lambda i=i: api.register(f"p{i}") for i in range(USERS)])
            await bounded(8, [lambda u=u: api.create_goal(u) for u in users])
            runs = {}
            for n in CONSUMER_COUNTS:
                say(f"partitions: {events} events, {n} analytics consumer(s)")
                runs[str(n)] = await _one_count(stack, log, api, users, n, events)
        log.client.close()
    finally:
        stack.stop()
        await delete_namespace_keys(main.redis_url, namespace)
    one, two = runs["1"]["events_per_s"], runs["2"]["events_per_s"]
    return {
        "partitions": P,
        "events_per_s_1_consumer": one,
        "events_per_s_2_consumers": two,
        "speedup": round(two / one, 2),
        "runs": runs,
    }
