"""Dead letters against a real Redis and real consumers: replay reaches one group only."""

from typing import Any

import pytest
from momentum_libs.consumer import StreamConsumer
from momentum_libs.dead_letters import (
    DEAD_FIELDS,
    DeadLetterNotFoundError,
    DeadLetters,
    replay_consumer,
)
from momentum_libs.events import DEAD_ERROR, STREAM_FIELD, Envelope, EventType, UserPayload
from momentum_libs.settings import StreamConsumerSettings
from redis.asyncio import Redis


class GroupSettings(StreamConsumerSettings):
    consumer_name_prefix: str = "test"


class Group:
    """A consumer group as a service runs it: its main consumer and its replay consumer."""

    def __init__(self, redis: Redis, namespace: str, name: str) -> None:
        self.settings = GroupSettings(
            events_stream=f"{namespace}events",
            consumer_group=name,
            consumer_block_ms=10,
            consumer_max_deliveries=1,
        )
        self.broken = False
        self.applied: list[Envelope] = []
        self.main = StreamConsumer.from_settings(self.settings, redis, self.handle)
        self.replay = replay_consumer(self.settings, redis, self.handle)
        self.dead = DeadLetters.of(self.settings, redis)

    async def handle(self, envelope: Envelope) -> None:
        if self.broken:
            raise RuntimeError("a bug in this group's handler")
        self.applied.append(envelope)

    async def consume(self) -> None:
        for consumer in (self.main, self.replay):
            await consumer.ensure_group()
            await consumer.process_once()


def event(user_id: str = "u1") -> Envelope:
    return Envelope.create(EventType.USER_UPDATED, user_id, UserPayload(timezone="UTC"))


async def test_a_replayed_dead_letter_is_applied_by_its_group_alone_and_leaves_the_dead_stream(
    redis: Redis, namespace: str
) -> None:
    broken, healthy = Group(redis, namespace, "broken"), Group(redis, namespace, "healthy")
    broken.broken = True
    for group in (broken, healthy):
        await group.consume()  # both groups exist before the event is written
    e = event()
    await redis.xadd(broken.settings.events_stream, e.to_stream_fields())  # type: ignore[arg-type]
    for group in (broken, healthy):
        await group.consume()
    assert healthy.applied == [e]
    [letter] = await broken.dead.list(10)
    assert letter.event == e
    assert "a bug in this group's handler" in letter.error
    assert await healthy.dead.count() == 0

    broken.broken = False  # the bug is fixed
    await broken.dead.replay(letter.id)
    assert await broken.dead.count() == 0
    for group in (broken, healthy):
        await group.consume()
    assert broken.applied == [e]
    assert healthy.applied == [e]  # not delivered to the other group a second time


async def test_a_replayed_event_that_fails_again_is_dead_lettered_again(
    redis: Redis, namespace: str
) -> None:
    group = Group(redis, namespace, "g")
    group.broken = True
    await group.consume()
    e = event()
    await redis.xadd(group.settings.events_stream, e.to_stream_fields())  # type: ignore[arg-type]
    await group.consume()
    [first] = await group.dead.list(10)
    await group.dead.replay(first.id)
    await group.consume()
    [again] = await group.dead.list(10)
    assert again.id != first.id
    assert again.event == e
    assert again.fields["dead_letter_stream"] == group.settings.replay_stream


async def test_replay_moves_only_the_original_fields(redis: Redis, namespace: str) -> None:
    group = Group(redis, namespace, "g")
    e = event()
    dead_id = await redis.xadd(
        group.settings.dead_letters,
        {**e.to_stream_fields(), **{name: "x" for name in DEAD_FIELDS}},  # type: ignore[dict-item]
    )
    new_id = await group.dead.replay(dead_id)
    entries: Any = await redis.xrange(group.settings.replay_stream)
    assert entries == [(new_id, {STREAM_FIELD: e.to_stream_fields()[STREAM_FIELD]})]


async def test_show_drop_and_unknown_ids(redis: Redis, namespace: str) -> None:
    group = Group(redis, namespace, "g")
    first = await redis.xadd(group.settings.dead_letters, {"garbage": "1", DEAD_ERROR: "bad"})
    second = await redis.xadd(group.settings.dead_letters, event().to_stream_fields())  # type: ignore[arg-type]
    letter = await group.dead.get(first)
    assert letter.event is None  # not an event: shown, not parsed
    assert letter.original == {"garbage": "1"}
    assert [d.id for d in await group.dead.list(10, after=first)] == [second]

    await group.dead.drop(first)
    assert [d.id for d in await group.dead.list(10)] == [second]
    for operation in (group.dead.get, group.dead.drop, group.dead.replay):
        with pytest.raises(DeadLetterNotFoundError, match=first):
            await operation(first)
    assert await redis.xlen(group.settings.replay_stream) == 0


async def test_replay_trims_what_the_group_already_acked_and_keeps_the_rest(
    redis: Redis, namespace: str
) -> None:
    group = Group(redis, namespace, "g")
    await group.consume()
    letters = [
        await redis.xadd(group.settings.dead_letters, event(f"u{i}").to_stream_fields())  # type: ignore[arg-type]
        for i in range(3)
    ]
    await group.dead.replay(letters[0])
    await group.dead.replay(letters[1])
    await group.consume()  # both applied and acked
    assert len(group.applied) == 2
    await group.dead.replay(letters[2])
    replayed: Any = await redis.xrange(group.settings.replay_stream)
    # The first is gone; the last acked one may stay; the unread one is kept.
    assert len(replayed) == 2
    await group.consume()
    assert [e.user_id for e in group.applied] == ["u0", "u1", "u2"]
