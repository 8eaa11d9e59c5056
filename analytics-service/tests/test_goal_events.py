"""Goal events as tracking publishes them over the embedded MongoDB server."""

from datetime import UTC, datetime, timedelta

from bson import ObjectId
from momentum_libs.events import Envelope, EventType, GoalPayload

from .analytics_support import publish
from .conftest import Service


def goal_event(
    kind: EventType, user_id: str, goal_id: str, version: int, active: bool, at: datetime
) -> Envelope:
    payload = GoalPayload(
        goal_id=goal_id, title=goal_id, is_active=active, version=version, activated_at=at
    )
    return Envelope.create(kind, user_id, payload)


async def test_a_naive_activated_at_does_not_break_picking_the_active_goal(
    service: Service,
) -> None:
    """A goal's ``activated_at`` read back after a ``$set`` has no zone, so an event of it
    carries a naive timestamp; the relay may also publish a new activation before the
    previous goal's deactivation. Analytics must still pick the latest activation."""
    user = f"u-{ObjectId()}"
    first, second = str(ObjectId()), str(ObjectId())
    t0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    t1, t2 = t0 + timedelta(minutes=1), t0 + timedelta(minutes=2)
    events = [
        goal_event(EventType.GOAL_CREATED, user, first, 1, True, t0),
        goal_event(EventType.GOAL_CREATED, user, second, 1, False, t0),
        goal_event(EventType.GOAL_UPDATED, user, first, 2, False, t0),
        goal_event(EventType.GOAL_ACTIVATED, user, second, 2, True, t1),
        # A title change of the active goal: its activated_at as read back, without zone.
        goal_event(EventType.GOAL_UPDATED, user, second, 3, True, t1.replace(tzinfo=None)),
        # Activating the first again: published before the second's deactivation, which
        # is not out yet, so both goals are active here for a while.
        goal_event(EventType.GOAL_ACTIVATED, user, first, 3, True, t2),
    ]
    await publish(service.redis, service.settings.events_stream, events)
    await service.wait_drained()
    assert await service.redis.xrange(service.settings.dead_letters) == []
    dashboard = (await service.get("/analytics/dashboard", user)).json()
    assert dashboard["active_goal"] == {"id": first, "title": first}
