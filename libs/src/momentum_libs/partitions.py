"""The partitioned event log: P streams, a user's events always in the same one, in order.

With ``P = 1`` (the default) the log is the one stream it always was, under its own name.
With ``P > 1`` partition ``i`` of ``{momentum.events}`` is ``{momentum.events.p<i>}``:
each partition has a hash tag of its own, so a Redis Cluster spreads them over its slots
(and nodes), while everything kept beside a partition (its dead-letter and replay
streams, claim keys, leases, trimmed windows: :func:`momentum_libs.stream_keys.beside`)
shares that partition's slot.

A user's partition is ``crc32(user_id) mod P``: CRC-32 because it is stable across
processes, machines and Python versions (``hash()`` is salted per process) and cheap.

The log records its P in ``<stream>.partitions`` (first come, ``SET NX``). A relay
configured with another P publishes nothing (:class:`PartitionCountMismatchError`, its
events wait in the outboxes) rather than put a user's events in another partition than
their earlier ones; a consumer with another P reads nothing rather than only some
partitions. The value ``draining`` (set by an operator) stops every relay while the
consumers read on: that is how P is changed on a live system (docs/operations.md,
"Partitions").
"""

import zlib
from collections.abc import Callable

from momentum_libs.cli import ToolError
from momentum_libs.redis_client import RedisClient
from momentum_libs.stream_keys import beside, has_hash_tag, hash_tag


class PartitionCountMismatchError(ToolError, RuntimeError):
    """The log was partitioned with another P than this process's setting."""


DRAINING = "draining"
"""The log's recorded P while an operator changes it: relays stop, consumers read on."""


def partition_of(user_id: str, partitions: int) -> int:
    """The partition holding ``user_id``'s events."""
    return zlib.crc32(user_id.encode("utf-8")) % partitions


def users_of(index: int, partitions: int) -> Callable[[str], bool]:
    """Whether a user's events go to partition ``index`` (every user's, when P = 1)."""
    return lambda user_id: partition_of(user_id, partitions) == index


def partition_stream(stream: str, index: int, partitions: int) -> str:
    """Partition ``index`` of ``stream`` (``stream`` itself when there is only one)."""
    if partitions == 1:
        return stream
    if not has_hash_tag(stream):  # the partition's name becomes its own tag
        return f"{{{stream}.p{index}}}"
    tag = hash_tag(stream)
    return stream.replace(f"{{{tag}}}", f"{{{tag}.p{index}}}", 1)


def partition_streams(stream: str, partitions: int) -> list[str]:
    return [partition_stream(stream, index, partitions) for index in range(partitions)]


def partitions_key(stream: str) -> str:
    """Where the log records its P (the base stream's slot)."""
    return beside(stream, ".partitions")


async def check_partitions(
    redis: RedisClient, stream: str, partitions: int, *, publishing: bool
) -> None:
    """Record ``partitions`` as the log's P if none is recorded; raise
    :class:`PartitionCountMismatchError` if another is (or, ``publishing``, while the log
    is being drained)."""
    key = partitions_key(stream)
    if await redis.set(key, partitions, nx=True):
        return
    raw = await redis.get(key)
    recorded = raw.decode() if isinstance(raw, bytes) else str(raw)
    if raw is None or recorded == str(partitions) or (recorded == DRAINING and not publishing):
        return
    if recorded == DRAINING:
        raise PartitionCountMismatchError(
            f"the event log {stream!r} is being drained to change its partitions: nothing "
            "is published until the new count is recorded (docs/operations.md, 'Partitions')"
        )
    raise PartitionCountMismatchError(
        f"the event log {stream!r} has {recorded} partitions and this process is configured "
        f"with MOMENTUM_EVENTS_PARTITIONS={partitions}: it neither publishes nor reads until "
        "they agree (docs/operations.md, 'Partitions')"
    )
