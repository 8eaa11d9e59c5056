"""A consumer group's dead letters: list, show, replay to that group alone, drop.

A dead letter (see :mod:`momentum_libs.consumer`) is the original stream entry plus the
``dead_letter_*`` fields of :mod:`momentum_libs.events`. Replaying it to the main event
stream would deliver it again to *every* group, and a group that handled it long ago
would apply a stale event once more. So each group also reads its own **replay stream**,
``<events stream>.replay.<group>``, with a second :class:`StreamConsumer` of the same
group name, handler and dead-letter stream (:func:`replay_consumer`). :meth:`replay`
moves the entry, its original fields only, from the dead stream to that replay stream in
one Lua script: it is either still dead or queued for its group, never both nor lost.
The group's service then applies it with its own code and configuration, with every
guarantee of the main stream (acked after its work, reclaimed from a dead consumer,
dead-lettered again if it keeps failing). Handlers are idempotent and version-guarded,
so a replayed event arriving after later ones of the same user changes nothing it must
not.

On a partitioned log (:mod:`momentum_libs.partitions`) each partition has its own dead
letters and replay stream, beside it (the replay script's two keys share its slot), read
by the replica holding the partition: :meth:`DeadLetters.of` names the partition.
"""

from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from momentum_libs.cli import ToolError
from momentum_libs.consumer import Applied, BatchHandler, Handler, StreamConsumer
from momentum_libs.events import (
    DEAD_CONSUMER,
    DEAD_DELIVERIES,
    DEAD_ENTRY_ID,
    DEAD_ERROR,
    DEAD_GROUP,
    DEAD_STREAM,
    Envelope,
    UnknownEventError,
)
from momentum_libs.partitions import partition_stream
from momentum_libs.redis_client import RedisClient
from momentum_libs.settings import StreamConsumerSettings

DEAD_FIELDS = (DEAD_ERROR, DEAD_ENTRY_ID, DEAD_STREAM, DEAD_GROUP, DEAD_CONSUMER, DEAD_DELIVERIES)

# KEYS: dead stream, replay stream. ARGV: the entry id, then the dead-letter field names.
# Returns the replay stream's new entry id, or false when the entry is not (or no longer)
# in the dead stream.
_REPLAY_SCRIPT = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entries == 0 then return false end
local dead = {}
for i = 2, #ARGV do dead[ARGV[i]] = true end
local fields, kept = entries[1][2], {}
for i = 1, #fields, 2 do
    if not dead[fields[i]] then
        kept[#kept + 1] = fields[i]
        kept[#kept + 1] = fields[i + 1]
    end
end
local new_id = redis.call('XADD', KEYS[2], '*', unpack(kept))
redis.call('XDEL', KEYS[1], ARGV[1])
return new_id
"""


class DeadLetterNotFoundError(ToolError, LookupError):
    """No such entry in the dead-letter stream (never there, replayed or dropped)."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    fields: dict[str, str]

    @property
    def error(self) -> str:
        return self.fields.get(DEAD_ERROR, "")

    @property
    def deliveries(self) -> str:
        return self.fields.get(DEAD_DELIVERIES, "")

    @property
    def original(self) -> dict[str, str]:
        """The entry's fields as they were on the stream it died on."""
        return {k: v for k, v in self.fields.items() if k not in DEAD_FIELDS}

    @property
    def event(self) -> Envelope | None:
        """The event, or None for an entry that is not a valid event."""
        try:
            return Envelope.from_stream_fields(self.original)
        except UnknownEventError:
            return None


def replay_consumer(
    settings: StreamConsumerSettings,
    redis: RedisClient,
    handler: Handler,
    batch_handler: BatchHandler | None = None,
    applied: Applied | None = None,
) -> StreamConsumer:
    """The group's consumer of its replay stream: same group, handlers and dead letters."""
    return StreamConsumer.from_settings(
        settings, redis, handler, batch_handler, stream=settings.replay_stream, applied=applied
    )


class DeadLetters:
    def __init__(
        self, redis: RedisClient, dead_stream: str, replay_stream: str, group: str
    ) -> None:
        self._redis = redis
        self.dead_stream = dead_stream
        self.replay_stream = replay_stream
        self.group = group
        self._replay = redis.register_script(_REPLAY_SCRIPT)

    @classmethod
    def of(
        cls, settings: StreamConsumerSettings, redis: RedisClient, partition: int | None = None
    ) -> "DeadLetters":
        """The group's dead letters: of the log, or of one ``partition`` of a partitioned
        one (:class:`ToolError` when it is not one of them, or not given)."""
        count = settings.events_partitions
        if count == 1 and partition in (None, 0):
            return cls(
                redis, settings.dead_letters, settings.replay_stream, settings.consumer_group
            )
        if partition is None or not 0 <= partition < count:
            raise ToolError(
                f"the event log has {count} partition(s), each with its own dead letters: "
                f"name one with --partition 0…{count - 1}"
            )
        stream = partition_stream(settings.events_stream, partition, count)
        return cls(
            redis,
            settings.dead_letters_of(stream),
            settings.replay_stream_of(stream),
            settings.consumer_group,
        )

    @classmethod
    def every(cls, settings: StreamConsumerSettings, redis: RedisClient) -> list["DeadLetters"]:
        """The group's dead letters of each partition (one: the log's)."""
        return [cls.of(settings, redis, p) for p in range(settings.events_partitions)]

    async def count(self) -> int:
        return int(await self._redis.xlen(self.dead_stream))

    async def list(self, count: int, after: str | None = None) -> list[DeadLetter]:
        """The oldest ``count`` dead letters (after the entry id ``after``, exclusive)."""
        start = f"({after}" if after else "-"
        entries: Any = await self._redis.xrange(self.dead_stream, start, "+", count=count)
        return [self._letter(entry_id, fields) for entry_id, fields in entries]

    async def get(self, entry_id: str) -> DeadLetter:
        entries: Any = await self._redis.xrange(self.dead_stream, entry_id, entry_id)
        if not entries:
            raise DeadLetterNotFoundError(self._missing(entry_id))
        return self._letter(*entries[0])

    async def replay(self, entry_id: str) -> str:
        """Move the entry to the group's replay stream; returns its id there."""
        new_id = await self._replay(
            keys=[self.dead_stream, self.replay_stream], args=[entry_id, *DEAD_FIELDS]
        )
        if new_id is None:
            raise DeadLetterNotFoundError(self._missing(entry_id))
        await self._trim_replayed()
        return _text(new_id)

    async def drop(self, entry_id: str) -> None:
        if not await self._redis.xdel(self.dead_stream, entry_id):
            raise DeadLetterNotFoundError(self._missing(entry_id))

    async def _trim_replayed(self) -> None:
        """Drop replay entries the group has delivered and acked: they served their purpose.

        Kept: from the oldest still pending, else from the last delivered (one acked entry
        stays; what the group reads later has a higher id, so nothing unread is lost)."""
        try:
            groups: Any = await self._redis.xinfo_groups(self.replay_stream)
        except ResponseError:  # no such stream (yet)
            return
        ours = [g for g in groups if _text(g["name"]) == self.group]
        if not ours:
            return  # the group's service has not read its replay stream yet: keep all
        pending: Any = await self._redis.xpending(self.replay_stream, self.group)
        keep_from = pending["min"] if pending["pending"] else ours[0]["last-delivered-id"]
        await self._redis.xtrim(self.replay_stream, minid=_text(keep_from), approximate=False)

    def _letter(self, entry_id: Any, fields: Any) -> DeadLetter:
        return DeadLetter(_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})

    def _missing(self, entry_id: str) -> str:
        return f"no dead letter {entry_id} in {self.dead_stream}"
