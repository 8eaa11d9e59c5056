"""Reading the namespaced event stream, waiting for the outbox relay."""

import asyncio

from momentum_auth.settings import AuthSettings
from momentum_libs.events import Envelope, EventType
from redis.asyncio import Redis


async def events_of(
    settings: AuthSettings, user_id: str, kind: EventType, count: int = 1, timeout_s: float = 10
) -> list[Envelope]:
    """The events of one type for one user, once ``count`` of them are on the stream."""
    redis = Redis.from_url(settings.redis_url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            entries = await redis.xrange(settings.events_stream)
            found = [
                e
                for e in (Envelope.from_stream_fields(fields) for _, fields in entries)
                if e.type is kind and e.user_id == user_id
            ]
            if len(found) >= count or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
