"""A consumer replica on a partitioned log, with a projection kept in Redis: the tests run
it in-process, or as a process of its own to kill with SIGKILL mid-burst.

The projection is per user: the last sequence number applied, the minutes summed, and
the redeliveries skipped; an event whose number is not the next one counts as a gap (an
event lost or handled out of order). So "no loss, no duplicate, in order" is: every
user's last is their count, no gaps, and the total is the recomputed sum.

Run: ``python partition_replica.py <redis url> <stream> <group> <P> <lease ms> <name>
<seconds per event>``; it prints ``held <n>`` each time the partitions it holds change.
"""

import asyncio
import sys
from typing import Any

from momentum_libs.consumer import Handler, StreamConsumer
from momentum_libs.events import Envelope
from momentum_libs.partitioned import PartitionedConsumer
from momentum_libs.redis_client import RedisClient, redis_client

# KEYS[1]: the user's projection. ARGV: sequence number, minutes, replica name.
_APPLY_SCRIPT = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local seq = tonumber(ARGV[1])
if seq <= last then
    redis.call('HINCRBY', KEYS[1], 'redelivered', 1)
    return 0
end
if seq ~= last + 1 then redis.call('HINCRBY', KEYS[1], 'gaps', 1) end
redis.call('HSET', KEYS[1], 'last', seq)
redis.call('HINCRBY', KEYS[1], 'total', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'by:' .. ARGV[3], 1)
return 1
"""


def projection_key(stream: str, user_id: str) -> str:
    return f"{{{stream}.projection.{user_id}}}"


class Projection:
    """The handler: applies a log.created event's ``version`` (sequence) and minutes."""

    def __init__(self, redis: RedisClient, stream: str, replica: str, pause_s: float = 0.0) -> None:
        self._apply = redis.register_script(_APPLY_SCRIPT)
        self._stream = stream
        self._replica = replica
        self._pause_s = pause_s

    async def __call__(self, envelope: Envelope) -> None:
        if self._pause_s:
            await asyncio.sleep(self._pause_s)  # a handler's work, so a burst takes a while
        payload = envelope.payload
        await self._apply(
            keys=[projection_key(self._stream, envelope.user_id)],
            args=[payload["version"], payload["minutes"], self._replica],
        )


def replica(
    redis: RedisClient,
    stream: str,
    group: str,
    partitions: int,
    name: str,
    *,
    lease_ms: int,
    pause_s: float = 0.0,
    handler: Handler | None = None,
) -> PartitionedConsumer:
    """A replica named ``name``; ``handler``: instead of the projection's."""
    handle = handler or Projection(redis, stream, name, pause_s)

    def consumers_of(partition: str) -> list[StreamConsumer]:
        return [
            StreamConsumer(
                redis,
                partition,
                group,
                name,
                handle,
                block_ms=50,
                claim_idle_ms=60_000,  # only a take-over may claim: a reclaim would hide it
                dead_letter_stream=f"{partition}.dead.{group}",
            )
        ]

    return PartitionedConsumer(
        redis, stream, partitions, group, name, consumers_of, lease_ms=lease_ms
    )


async def _main(argv: list[str]) -> None:
    url, stream, group, partitions, lease_ms, name, pause_s = argv
    redis = redis_client(url, 5000, block_ms=50)
    consumer = replica(
        redis, stream, group, int(partitions), name, lease_ms=int(lease_ms), pause_s=float(pause_s)
    )
    task = asyncio.create_task(consumer.run())
    shown: Any = None
    while not task.done():
        if consumer.held != shown:
            shown = consumer.held
            print(f"held {len(shown)}", flush=True)
        await asyncio.sleep(0.05)
    await task


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
