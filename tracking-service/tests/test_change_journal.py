"""The change journal's numbers: an unbroken run per user, however replicas take turns."""

import uuid
from datetime import UTC, date, datetime
from typing import Any

from momentum_libs.events import Envelope, EventType, LogPayload, UserPayload
from momentum_tracking.changes.repository import ChangeRepository
from tracking_support import Api


def _entry(n: int) -> dict[str, Any]:
    return {
        "type": "daily_log",
        "entity_id": f"log-{n}",
        "op": "upsert",
        "version": 1,
        "event_id": f"event-{n}",
        "changed_at": datetime.now(UTC),
        "expires_at": datetime.now(UTC),
    }


async def test_replicas_taking_turns_number_one_unbroken_run(api: Api) -> None:
    """Each replica remembers the number it journaled last and starts there: when the
    user's partition moved to another replica meanwhile, its numbers must still follow
    the other's, none twice and none skipped (a reader stops at the first gap)."""
    first, second = ChangeRepository(), ChangeRepository()
    numbers = [await first.append("u-turns", _entry(n)) for n in range(3)]
    numbers += [await second.append("u-turns", _entry(n)) for n in range(3, 8)]
    numbers += [await first.append("u-turns", _entry(n)) for n in range(8, 10)]
    assert numbers == list(range(1, 11))
    run = await second.run_after("u-turns", 0, 20)
    assert [e.seq for e in run] == list(range(1, 11))
    assert [e.entity_id for e in run] == [f"log-{n}" for n in range(10)]
    assert await first.head("u-turns") == 10


async def test_a_forgotten_user_starts_again_from_one(api: Api) -> None:
    journal = ChangeRepository()
    for n in range(3):
        await journal.append("u-forgotten", _entry(n))
    await journal.forget_user("u-forgotten")
    assert await journal.append("u-forgotten", _entry(9)) == 1
    assert [e.entity_id for e in await journal.run_after("u-forgotten", 0, 5)] == ["log-9"]


async def test_a_batch_taken_over_mid_way_numbers_on_after_the_other_replica(api: Api) -> None:
    """One ordered insert per batch: when its first number was taken by another replica
    (the partition moved and back), the batch is numbered again after that replica's."""
    first, second = ChangeRepository(), ChangeRepository()
    assert await first.append("u-batch", *(_entry(n) for n in range(3))) == 3
    assert await second.append("u-batch", *(_entry(n) for n in range(3, 6))) == 6
    assert await first.append("u-batch", *(_entry(n) for n in range(6, 10))) == 10
    run = await second.run_after("u-batch", 0, 20)
    assert [e.seq for e in run] == list(range(1, 11))
    assert [e.entity_id for e in run] == [f"log-{n}" for n in range(10)]
    assert await first.head("u-batch") == 10


async def test_a_users_events_are_journaled_once_each_in_order(api: Api) -> None:
    """Redelivered events (again in one read, or read before) are journaled once; events
    that are not changes of goals, targets, logs or breaks not at all."""
    changes = api.app.state.service.changes
    user_id = f"u-{uuid.uuid4().hex}"
    logs = [_log(user_id, n) for n in range(4)]
    registered = Envelope.create(EventType.USER_REGISTERED, user_id, UserPayload(timezone="UTC"))
    await changes.record(user_id, logs[:2])
    await changes.record(user_id, [logs[1], registered, logs[2], logs[0], logs[2], logs[3]])
    journal = ChangeRepository()
    run = await journal.run_after(user_id, 0, 20)
    assert [e.entity_id for e in run] == [f"log-{n}" for n in range(4)]
    assert [e.seq for e in run] == [1, 2, 3, 4]


def _log(user_id: str, n: int) -> Envelope:
    payload = LogPayload(
        log_id=f"log-{n}", goal_id="g", date=date(2026, 11, 20), minutes=n + 1, version=1
    )
    return Envelope.create(EventType.LOG_CREATED, user_id, payload)
