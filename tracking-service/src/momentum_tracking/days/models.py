"""``user_days``: what tracking knows of each user's days, kept from auth's user events."""

from datetime import datetime

from beanie import Document
from pydantic import Field


class UserDays(Document):
    """One per user, ``_id`` the user id: the timezone and ``day_start`` of their latest
    ``user.registered``/``user.updated`` event, and the day that state applies from.

    ``event_at`` is that event's ``occurred_at``: an older event arriving late (a
    reclaimed delivery) changes nothing."""

    id: str = Field(alias="_id")  # type: ignore[assignment]
    timezone: str
    day_start: str  # "HH:MM"
    settings_from: str | None = None  # "YYYY-MM-DD"
    settings_from_at: datetime | None = None
    event_at: datetime

    class Settings:
        name = "user_days"
