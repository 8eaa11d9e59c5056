"""Users' day settings from auth's events, and the local-today rules they drive here."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import httpx
import pytest
from momentum_libs.clock import FileClock
from momentum_libs.events import Envelope, EventType, PastDaySettings, UserPayload
from momentum_libs.localday import parse_day_start, today, zone
from momentum_libs.testing.clocks import FixedClock
from momentum_libs.testing.tokens import TestSigner
from momentum_libs.testing.waiting import eventually
from momentum_tracking.days.models import UserDays
from momentum_tracking.days.repository import DaysRepository
from momentum_tracking.days.service import DayService
from momentum_tracking.main import create_app
from momentum_tracking.settings import TrackingSettings
from redis.asyncio import Redis
from tracking_support import Api


@pytest.fixture
def clock(tmp_path: Path) -> FileClock:
    return FileClock(tmp_path / "now")


@pytest.fixture
async def clocked(
    settings_for: Any, signer: TestSigner, clock: FileClock
) -> AsyncIterator[tuple[Api, TrackingSettings]]:
    settings = settings_for(test_clock_file=clock.path)
    app = create_app(settings, token_keys=signer.keys)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tracking") as client:
            yield Api(client, signer, app), settings


def _key(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


async def announce(
    settings: TrackingSettings, user_id: str, type_: EventType, payload: UserPayload
) -> None:
    """Put a user event on the stream, as auth would, and wait until it is handled."""
    await announce_envelope(settings, Envelope.create(type_, user_id, payload))


async def announce_envelope(settings: TrackingSettings, event: Envelope) -> None:
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        entry = await redis.xadd(settings.events_stream, event.to_stream_fields())  # type: ignore[arg-type]

        async def handled() -> bool:
            groups = await redis.xinfo_groups(settings.events_stream)
            group = next((g for g in groups if g["name"] == settings.consumer_group), None)
            if group is None or _key(group["last-delivered-id"]) < _key(entry):
                return False
            group_name = settings.consumer_group
            stream = settings.events_stream
            return not await redis.xpending_range(stream, group_name, entry, entry, 1)

        assert await eventually(handled), "the consumer did not handle the event"
    finally:
        await redis.aclose()


async def test_settings_from_events_decide_today(
    clocked: tuple[Api, TrackingSettings], clock: FileClock
) -> None:
    api, settings = clocked
    uid = "u" + datetime.now(UTC).strftime("%f")
    h = api.user(uid)
    clock.set("2026-03-29T00:59:59+00:00")  # Berlin: 01:59:59 CET, just before the jump
    on_28 = {"start_date": "2026-03-28", "end_date": "2026-03-28", "kind": "sick"}
    on_29 = {**on_28, "start_date": "2026-03-29", "end_date": "2026-03-29"}
    # Unknown yet: any timezone's today may start a break (UTC-12's is 28 March).
    r = await api.client.post("/breaks", json=on_28, headers=h)
    assert r.status_code == 201, r.text
    berlin = UserPayload(
        timezone="Europe/Berlin", day_start="02:30", effective_date=date(2026, 1, 5)
    )
    await announce(settings, uid, EventType.USER_REGISTERED, berlin)
    stored = await UserDays.get_pymongo_collection().find_one({"_id": uid})
    assert stored is not None and stored["day_start"] == "02:30"
    goal = await api.goal(h)
    # 02:30 hides in the gap: the 29th begins at 03:00 CEST, so it is still the 28th.
    r = await api.client.post("/breaks", json={**on_28, "goal_id": goal["id"]}, headers=h)
    assert r.status_code == 201, r.text
    clock.set("2026-03-29T01:00:00+00:00")
    r = await api.client.post("/breaks", json={**on_29, "goal_id": goal["id"]}, headers=h)
    assert r.status_code == 201, r.text
    r = await api.client.post("/breaks", json={**on_28, "end_date": "2026-03-30"}, headers=h)
    assert r.status_code == 422, r.text
    assert "2026-03-29" in r.json()["detail"]


async def test_an_older_user_event_arriving_late_changes_nothing(
    clocked: tuple[Api, TrackingSettings],
) -> None:
    _, settings = clocked
    uid = "u" + datetime.now(UTC).strftime("%f")
    await announce(settings, uid, EventType.USER_UPDATED, UserPayload(timezone="Asia/Kathmandu"))
    late = Envelope(
        type=EventType.USER_UPDATED,
        user_id=uid,
        payload=UserPayload(timezone="UTC").model_dump(mode="json"),
        occurred_at=datetime.now(UTC) - timedelta(hours=1),
    )
    await announce_envelope(settings, late)
    stored = await UserDays.get_pymongo_collection().find_one({"_id": uid})
    assert stored is not None and stored["timezone"] == "Asia/Kathmandu"
    # And user.deleted forgets them.
    await announce_envelope(
        settings, Envelope(type=EventType.USER_DELETED, user_id=uid, payload={})
    )
    assert await UserDays.get_pymongo_collection().find_one({"_id": uid}) is None


async def test_a_document_from_before_the_history_takes_the_next_event_and_keeps_it(
    clocked: tuple[Api, TrackingSettings],
) -> None:
    _, settings = clocked
    uid = "u" + datetime.now(UTC).strftime("%f")
    days = UserDays.get_pymongo_collection()
    # As the previous version stored it: no version, no history, no rest days.
    await days.insert_one({"_id": uid, "timezone": "UTC", "day_start": "00:00", "event_ms": 1})
    update = UserPayload(
        timezone="Europe/Berlin",
        rest_weekdays=["sun"],
        daily_goal_minutes=25,
        effective_date=date(2026, 3, 2),
    )
    await announce(settings, uid, EventType.USER_UPDATED, update)
    stored = await days.find_one({"_id": uid})
    assert stored is not None
    assert (stored["timezone"], stored["rest_weekdays"], stored["daily_goal_minutes"]) == (
        "Europe/Berlin",
        ["sun"],
        25,
    )
    assert stored["version"] == 1
    assert [h["effective"] for h in stored["history"]] == ["2026-03-02"]
    # An import's restored past days join the history before it; the current state stays.
    past = PastDaySettings(effective_date=date(2025, 6, 1), timezone="UTC", daily_goal_minutes=5)
    await announce(
        settings, uid, EventType.USER_UPDATED, update.model_copy(update={"restored": [past]})
    )
    stored = await days.find_one({"_id": uid})
    assert stored is not None and stored["version"] == 2
    assert [(h["effective"], h["daily_goal_minutes"]) for h in stored["history"]] == [
        ("2025-06-01", 5),
        ("2026-03-02", 25),
    ]
    assert stored["daily_goal_minutes"] == 25


@pytest.mark.parametrize(
    "at",
    [
        "2026-03-29T01:30:00+00:00",  # Europe's spring-forward hour
        "2026-11-01T06:30:00+00:00",  # America's fall-back hour
        "2026-12-31T11:59:00+00:00",  # just before Kiritimati's new year
        "2026-07-04T23:59:59+00:00",
        "2026-06-15T14:00:00+00:00",  # UTC-12 is past midnight, not past a 06:00 start
    ],
)
def test_the_earliest_today_is_never_after_any_users_today(at: str) -> None:
    """Log dates up to the day after it skip the settings read: if it were later than
    someone's today, a log dated two days after their today would be let through."""
    now = datetime.fromisoformat(at)
    earliest = DayService(DaysRepository(), FixedClock(now)).earliest_today()
    todays = {
        today(now, zone(name), parse_day_start(start)).date
        for name in available_timezones()
        for start in ("00:00", "03:15", "06:00")
    }
    assert earliest <= min(todays)
