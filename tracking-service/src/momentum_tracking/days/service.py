"""A user's local today, as tracking's date rules need it (momentum_libs.localday).

Tracking learns each user's timezone and ``day_start`` from auth's user events. Until
the first one arrives (an account a moment old, or one registered before these events
carried the day settings and unchanged since), it does not know them, and takes the
widest today there is: from the westernmost offset's (UTC-12) to the easternmost's
(UTC+14). Each rule then uses the end of that range that refuses nothing the user's
real today would allow, so the fallback never refuses a valid request; what it may let
through is a break starting up to a day before the user's real today, or a log dated a
day later than their real tomorrow, for an account tracking has heard nothing of yet.
"""

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfoNotFoundError

from momentum_libs.clock import Clock
from momentum_libs.events import UserPayload
from momentum_libs.localday import (
    WIDEST_EAST,
    WIDEST_WEST,
    DayFloor,
    local_day,
    parse_day_start,
    today,
    zone,
)
from momentum_libs.timestamps import as_utc

from momentum_tracking.days.models import UserDays
from momentum_tracking.days.repository import DaysRepository


@dataclass(frozen=True)
class Today:
    """The user's local today: ``earliest == latest`` when tracking knows their settings,
    else the range of todays on Earth now."""

    earliest: date
    latest: date


def _today_of(days: UserDays, now: datetime) -> date:
    floor = None
    if days.settings_from is not None and days.settings_from_at is not None:
        floor = DayFloor(date.fromisoformat(days.settings_from), as_utc(days.settings_from_at))
    return today(now, zone(days.timezone), parse_day_start(days.day_start), floor).date


class DayService:
    def __init__(self, days: DaysRepository, clock: Clock) -> None:
        self._days = days
        self._clock = clock

    async def today(self, user_id: str) -> Today:
        now = self._clock.now()
        days = await self._days.get(user_id)
        try:
            known = None if days is None else _today_of(days, now)
        except (ZoneInfoNotFoundError, ValueError):
            known = None  # a state this service's rules cannot read: as if unknown
        if known is None:
            return Today(local_day(now, WIDEST_WEST).date, local_day(now, WIDEST_EAST).date)
        return Today(known, known)

    async def user_changed(self, user_id: str, payload: UserPayload, occurred_at: datetime) -> None:
        fields = {
            "timezone": payload.timezone,
            "day_start": payload.day_start or "00:00",
            "settings_from": payload.effective_date.isoformat() if payload.effective_date else None,
            "settings_from_at": payload.effective_from,
        }
        await self._days.keep_newer(user_id, fields, occurred_at)

    async def forget(self, user_id: str) -> None:
        await self._days.forget(user_id)
