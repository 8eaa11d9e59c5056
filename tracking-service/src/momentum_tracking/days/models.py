"""``user_days``: what tracking knows of each user's days, kept from auth's user events."""

from datetime import datetime

from beanie import Document
from pydantic import Field


class UserDays(Document):
    """One per user, ``_id`` the user id: the timezone and ``day_start`` of their latest
    ``user.registered``/``user.updated`` event, and the day that state applies from.

    ``event_ms`` is that event's ``occurred_at`` in milliseconds since the epoch: an
    older event arriving late (a reclaimed delivery) changes nothing. A number, not a
    datetime: the embedded MongoDB server stops matching a datetime comparison once
    ``$set`` has stored a datetime of another document as a string."""

    id: str = Field(alias="_id")  # type: ignore[assignment]
    timezone: str
    day_start: str  # "HH:MM"
    settings_from: str | None = None  # "YYYY-MM-DD"
    settings_from_at: datetime | None = None
    event_ms: int

    class Settings:
        name = "user_days"
