"""Day settings on /users/me, their user.* events, and /users/me/today on a test clock."""

from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest
from momentum_auth.settings import AuthSettings
from momentum_libs.clock import FileClock
from momentum_libs.events import (
    DayState,
    Envelope,
    EventType,
    PastDaySettings,
    SettingsImportedPayload,
    UserPayload,
)
from pydantic import ValidationError
from redis.asyncio import Redis

from .conftest import SettingsFactory, assert_problem, new_account, running
from .events import events_of


@pytest.fixture
def clock(tmp_path: Path) -> FileClock:
    return FileClock(tmp_path / "now")


@pytest.fixture
async def clocked(
    make_settings: SettingsFactory, clock: FileClock
) -> AsyncIterator[tuple[AuthSettings, httpx.AsyncClient]]:
    settings = make_settings(test_clock_file=clock.path)
    async with running(settings) as (_, http):
        yield settings, http


def test_production_refuses_the_test_clock(make_settings: SettingsFactory, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="MOMENTUM_TEST_CLOCK_FILE"):
        make_settings(
            environment="production", signing_key_pem="x", test_clock_file=tmp_path / "now"
        )


async def test_settings_change_with_their_date_on_the_event(
    clocked: tuple[AuthSettings, httpx.AsyncClient], clock: FileClock
) -> None:
    settings, client = clocked
    clock.set("2026-06-10T01:30:00+02:00")  # Berlin, 10 June, 01:30
    acc = await new_account(client, timezone="Europe/Berlin")
    clock.set("2026-06-10T01:45:00+02:00")
    body = {"rest_weekdays": ["sun", "sat"], "day_start": "04:00", "daily_goal_minutes": 20}
    response = await client.patch("/users/me", json=body, headers=acc.headers)
    assert response.status_code == 200, response.text
    user = response.json()
    assert user["rest_weekdays"] == ["sat", "sun"]  # week order
    assert (user["day_start"], user["daily_goal_minutes"]) == ("04:00", 20)

    [registered] = await events_of(settings, acc.user["id"], EventType.USER_REGISTERED)
    assert registered.typed_payload().effective_date == date(2026, 6, 10)
    registered_at = datetime.fromisoformat("2026-06-09T23:30:00+00:00")  # the test clock's
    assert registered.typed_payload().changed_at == registered_at
    [updated] = await events_of(settings, acc.user["id"], EventType.USER_UPDATED)
    changed = UserPayload(
        timezone="Europe/Berlin",
        day_start="04:00",
        rest_weekdays=["sat", "sun"],
        daily_goal_minutes=20,
        effective_date=date(2026, 6, 10),
        effective_from=datetime.fromisoformat("2026-06-09T22:00:00+00:00"),
        changed_at=datetime.fromisoformat("2026-06-09T23:45:00+00:00"),
    )
    assert updated.typed_payload() == changed
    # A new name restates the day settings: their change's instant stays the same.
    clock.set("2026-06-10T03:00:00+02:00")
    response = await client.patch("/users/me", json={"display_name": "Ada"}, headers=acc.headers)
    assert response.status_code == 200, response.text
    renamed = (await events_of(settings, acc.user["id"], EventType.USER_UPDATED))[-1]
    assert renamed.typed_payload() == changed

    # 01:45 is before 04:00, but today does not go back to 9 June: it was the 10th
    # when the setting changed. It ends at 04:00 on the 11th.
    today = (await client.get("/users/me/today", headers=acc.headers)).json()
    assert today == {
        "date": "2026-06-10",
        "timezone": "Europe/Berlin",
        "day_start": "04:00",
        "starts_at": "2026-06-09T22:00:00Z",
        "ends_at": "2026-06-11T02:00:00Z",
    }
    clock.set("2026-06-11T03:59:00+02:00")
    today = (await client.get("/users/me/today", headers=acc.headers)).json()
    assert today["date"] == "2026-06-10"
    clock.set("2026-06-11T04:00:00+02:00")
    today = (await client.get("/users/me/today", headers=acc.headers)).json()
    assert (today["date"], today["starts_at"]) == ("2026-06-11", "2026-06-11T02:00:00Z")


async def test_invalid_day_settings_are_422(client: httpx.AsyncClient) -> None:
    acc = await new_account(client)
    for body in (
        {"day_start": "06:15"},
        {"day_start": "03:10"},
        {"day_start": "4:00"},
        {"day_start": None},
        {"rest_weekdays": ["monday"]},
        {"rest_weekdays": ["mon", "mon"]},
        {"rest_weekdays": None},
        {"daily_goal_minutes": 0},
        {"daily_goal_minutes": 1441},
        {"daily_goal_minutes": "20"},
    ):
        problem = assert_problem(
            await client.patch("/users/me", json=body, headers=acc.headers), 422
        )
        assert problem["errors"][0]["loc"][:2] == ["body", next(iter(body))], body
    me = (await client.get("/users/me", headers=acc.headers)).json()
    assert (me["rest_weekdays"], me["day_start"], me["daily_goal_minutes"]) == ([], "00:00", 1)


async def test_an_imports_settings_apply_from_today_with_the_days_before_the_account(
    clocked: tuple[AuthSettings, httpx.AsyncClient], clock: FileClock
) -> None:
    """user.settings_imported (tracking's import), read by auth's own consumer group."""
    settings, client = clocked
    clock.set("2026-06-10T12:00:00+02:00")
    acc = await new_account(client, timezone="Europe/Berlin")  # its first day: 10 June
    past = {"timezone": "UTC", "rest_weekdays": ["sun"], "daily_goal_minutes": 10}
    imported = SettingsImportedPayload(
        settings=DayState(timezone="Asia/Tokyo", day_start="05:00", daily_goal_minutes=30),
        history=[
            PastDaySettings(effective_date=date(2026, 1, 5), **past),
            PastDaySettings(effective_date=date(2026, 6, 10), **past),  # the account's own
            PastDaySettings(effective_date=date(2026, 7, 1), **past),
        ],
    )
    redis = Redis.from_url(settings.redis_url)
    try:
        for user_id in ("000000000000000000000000", acc.user["id"]):  # no such account: skipped
            event = Envelope.create(EventType.USER_SETTINGS_IMPORTED, user_id, imported)
            await redis.xadd(settings.events_stream, event.to_stream_fields())  # type: ignore[arg-type]
    finally:
        await redis.aclose()
    [updated] = await events_of(settings, acc.user["id"], EventType.USER_UPDATED)
    payload = updated.typed_payload()
    assert (payload.timezone, payload.day_start, payload.daily_goal_minutes) == (
        "Asia/Tokyo",
        "05:00",
        30,
    )
    assert payload.effective_date == date(2026, 6, 10)  # from today, as a PATCH would
    assert [p.effective_date for p in payload.restored] == [date(2026, 1, 5)]
    me = (await client.get("/users/me", headers=acc.headers)).json()
    assert (me["timezone"], me["day_start"], me["daily_goal_minutes"]) == (
        "Asia/Tokyo",
        "05:00",
        30,
    )
