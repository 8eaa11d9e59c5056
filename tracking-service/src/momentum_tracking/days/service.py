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

from momentum_libs import streak_rules
from momentum_libs.clock import Clock
from momentum_libs.events import UserPayload
from momentum_libs.localday import (
    LATEST_DAY_START,
    WIDEST_EAST,
    WIDEST_WEST,
    DayFloor,
    local_day,
    parse_day_start,
    today,
    zone,
)
from momentum_libs.problems import conflict
from momentum_libs.retry import WRITE_ATTEMPTS, backoff
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


def _with_event(
    user_id: str,
    held: UserDays | None,
    payload: UserPayload,
    occurred_at: datetime,
    registered: bool,
) -> UserDays | None:
    """``held`` with a user.* event in it; None when the event changes nothing."""
    event_ms = round(occurred_at.timestamp() * 1000)
    changes = streak_rules.event_settings(payload, occurred_at, registered)
    history = streak_rules.with_all([] if held is None else held.history, changes)
    newer = held is None or event_ms > held.event_ms
    first_day = None if held is None else held.first_day
    if registered and payload.effective_date is not None:
        first_day = payload.effective_date.isoformat()
    if held is not None and not newer:
        if history is None and first_day == held.first_day:
            return None
        kept: UserDays = held.model_copy(
            update={"history": history or held.history, "first_day": first_day}
        )
        return kept
    return UserDays(
        _id=user_id,
        timezone=payload.timezone,
        day_start=payload.day_start or "00:00",
        rest_weekdays=payload.rest_weekdays or [],
        daily_goal_minutes=payload.daily_goal_minutes or 1,
        settings_from=payload.effective_date.isoformat() if payload.effective_date else None,
        settings_from_at=payload.effective_from,
        event_ms=event_ms,
        first_day=first_day,
        history=history if history is not None else held.history if held else [],
    )


class DayService:
    def __init__(self, days: DaysRepository, clock: Clock) -> None:
        self._days = days
        self._clock = clock

    def earliest_today(self) -> date:
        """The earliest today any user can be in now (the westernmost offset's, with the
        latest day start): never after a user's today, since a floor only moves a today
        later. Rules that a date before it would satisfy for every user need no read."""
        return local_day(self._clock.now(), WIDEST_WEST, LATEST_DAY_START).date

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

    async def user_changed(
        self, user_id: str, payload: UserPayload, occurred_at: datetime, registered: bool
    ) -> None:
        """Keep a user.* event: its settings join the history (as analytics' do), and its
        state becomes the current one unless a newer event's already is."""
        for attempt in range(WRITE_ATTEMPTS):
            held = await self._days.get(user_id)
            days = _with_event(user_id, held, payload, occurred_at, registered)
            if days is None or await self._days.save(days, held):
                return
            await backoff(attempt)
        raise conflict()

    async def first_day(self, user_id: str) -> date | None:
        """The local day the account was registered; None while tracking does not know."""
        days = await self._days.get(user_id)
        return (
            None if days is None or days.first_day is None else date.fromisoformat(days.first_day)
        )

    async def forget(self, user_id: str) -> None:
        await self._days.forget(user_id)
