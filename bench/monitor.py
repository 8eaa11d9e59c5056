"""Where a backlog sits while a load runs: tracking's outbox, or the stream.

Sampled once a second: documents of tracking's ``daily_logs`` still holding unpublished
events (the relay is behind), and the analytics consumer group's ``lag`` and ``pending``
on the stream (the consumer is behind).
"""

import asyncio
import contextlib
import math
import time
from typing import Any

import httpx
from momentum_libs.devstack import Stack
from momentum_libs.redis_client import RedisClient, redis_client
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

GROUP = "analytics"
# The bench's own reads (a stream's length, its groups) on a loaded machine.
BENCH_TIMEOUT_MS = 10_000


class BacklogMonitor:
    def __init__(self, stack: Stack, interval_s: float = 1.0) -> None:
        self.stack = stack
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def sample(self, redis: RedisClient, mongo: AsyncMongoClient[dict[str, Any]]) -> None:
        row: dict[str, Any] = {"t": time.perf_counter()}
        stream = self.stack.events_stream
        with contextlib.suppress(Exception):
            row["stream_length"] = int(await redis.xlen(stream))
            for group in await redis.xinfo_groups(stream):
                name = group.get("name")
                if (name.decode() if isinstance(name, bytes) else name) == GROUP:
                    row["consumer_lag"] = group.get("lag")
                    row["consumer_pending"] = group.get("pending")
        with contextlib.suppress(Exception):
            logs = mongo[self.stack.database("tracking")]["daily_logs"]
            row["outbox_pending"] = await logs.count_documents({"outbox_pending": True})
        self.samples.append(row)

    async def once(self) -> dict[str, Any]:
        """One sample, now (its own connections)."""
        redis = redis_client(self.stack.redis_url, BENCH_TIMEOUT_MS)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.stack.mongodb_url)
        try:
            await self.sample(redis, mongo)
        finally:
            await redis.aclose()
            await mongo.close()
        return self.samples[-1]

    async def _run(self) -> None:
        redis = redis_client(self.stack.redis_url, BENCH_TIMEOUT_MS)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.stack.mongodb_url)
        try:
            while True:
                await self.sample(redis, mongo)
                await asyncio.sleep(self.interval_s)
        finally:
            await redis.aclose()
            await mongo.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.summary()

    def summary(self) -> dict[str, Any]:
        def peak(key: str) -> int | None:
            values = [s[key] for s in self.samples if isinstance(s.get(key), int)]
            return max(values) if values else None

        return {
            "samples": len(self.samples),
            "max_outbox_pending": peak("outbox_pending"),
            "max_consumer_lag": peak("consumer_lag"),
            "max_consumer_pending": peak("consumer_pending"),
            "series": [
                {k: v for k, v in s.items() if k != "t"}
                | {"s": round(s["t"] - self.samples[0]["t"], 1)}
                for s in self.samples
            ],
        }


DELAY_METRIC = "momentum_consumer_event_delay_seconds"
SHOWN_DELAYS_S = (0.1, 0.25, 0.5, 1.0, 2.5)


async def applied_within(stack: Stack) -> dict[float, float]:
    """analytics' own count of the events it applied within each delay (``le`` seconds from
    an event's occurred_at, set as tracking wrote it, to its application), from /metrics."""
    async with httpx.AsyncClient(timeout=BENCH_TIMEOUT_MS / 1000) as client:
        text = (await client.get(stack.metrics_url(GROUP))).text
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == DELAY_METRIC
        for sample in family.samples
        if sample.name.endswith("_bucket") and sample.labels.get("group") == GROUP
    }


def delay_shares(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """Of the events applied between two readings of :func:`applied_within`, the share
    applied within each of SHOWN_DELAYS_S (bucket bounds: no interpolation)."""
    applied = after.get(math.inf, 0.0) - before.get(math.inf, 0.0)
    if not applied:
        return {}
    return {
        f"{le:g}": round((after[le] - before.get(le, 0.0)) / applied, 3)
        for le in SHOWN_DELAYS_S
        if le in after
    }


async def delete_namespace_keys(redis_url: str, namespace: str) -> int:
    """Remove what this run left in a shared Redis: only keys under its own namespace."""
    redis = redis_client(redis_url, BENCH_TIMEOUT_MS)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        return len(keys)
    finally:
        await redis.aclose()
