"""The consumer inside the service: garbage is dead-lettered, the rest goes on."""

from datetime import date

from momentum_libs.events import Envelope, EventType, LogPayload

from .analytics_support import FakeTracking, publish
from .conftest import Service


async def test_garbage_and_unknown_versions_are_dead_lettered(service: Service) -> None:
    stream = service.settings.events_stream
    await service.redis.xadd(stream, {"event": "not json at all"})
    bad = Envelope.create(
        EventType.LOG_CREATED,
        "u-bad",
        LogPayload(log_id="l", goal_id="g", date=date(2026, 1, 1), minutes=5, version=1),
    )
    future = bad.model_copy(update={"version": 99, "event_id": "future"})
    invalid = bad.model_copy(update={"payload": {"log_id": "l"}, "event_id": "invalid"})
    await publish(service.redis, stream, [future, invalid])
    t = FakeTracking()
    goal = t.create_goal()
    t.create_log(goal, date(2026, 1, 2), 30)
    await service.send(t)
    dead = await service.redis.xrange(service.settings.dead_letters)
    assert len(dead) == 3
    assert all(b"dead_letter_error" in fields for _, fields in dead)
    assert (await service.get("/analytics/dashboard", t.user_id)).json()["total_minutes"] == 30
    assert await service.repo.get_user("u-bad") is None
