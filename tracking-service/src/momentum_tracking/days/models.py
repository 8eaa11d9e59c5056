"""``user_days``: what tracking knows of each user's days, kept from auth's user events."""

from datetime import datetime
from typing import Any

from beanie import Document
from momentum_libs.events import Weekday
from momentum_libs.streak_rules import DaySettings
from pydantic import Field


class UserDays(Document):
    """One per user, ``_id`` the user id: every day setting of their latest
    ``user.registered``/``user.updated`` event and the day that state applies from, and
    the history of those settings (``momentum_libs.streak_rules``, as analytics keeps it),
    which an export carries and its derived streak runs are computed by. ``first_day``:
    the local day the account was registered (None: an account from before it was kept);
    an import may restore breaks of the days before it only.

    ``event_ms`` is that event's ``occurred_at`` in milliseconds since the epoch: an
    older event arriving late (a reclaimed delivery) changes the current state in no way.
    A number, not a datetime: the embedded MongoDB server stops matching a datetime
    comparison once ``$set`` has stored a datetime of another document as a string.
    ``version`` guards each write (0: a document written before the history was kept)."""

    id: str = Field(alias="_id")  # type: ignore[assignment]
    timezone: str
    day_start: str  # "HH:MM"
    rest_weekdays: list[Weekday] = []
    daily_goal_minutes: int = 1
    settings_from: str | None = None  # "YYYY-MM-DD"
    settings_from_at: datetime | None = None
    event_ms: int
    first_day: str | None = None  # "YYYY-MM-DD": the day the account was registered
    history: list[DaySettings] = []
    version: int = 0

    def day_state(self) -> dict[str, Any]:
        """The current day settings, as an export writes and an import reads them."""
        return {
            "timezone": self.timezone,
            "day_start": self.day_start,
            "rest_weekdays": self.rest_weekdays,
            "daily_goal_minutes": self.daily_goal_minutes,
        }

    class Settings:
        name = "user_days"
