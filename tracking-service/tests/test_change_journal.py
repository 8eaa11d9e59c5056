"""The change journal's numbers: an unbroken run per user, however replicas take turns."""

from datetime import UTC, datetime
from typing import Any

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
