from momentum_libs.events import Weekday
from momentum_libs.outbox import OUTBOX_INDEX, OutboxDocument
from momentum_libs.timestamps import UtcDatetime
from pymongo import IndexModel


class User(OutboxDocument):
    """An account. ``email`` is stored normalised (lower case): its unique index makes
    registration case-insensitive. A deleted account is a tombstone until its
    ``user.deleted`` event is out (see momentum_libs.outbox); the tombstone keeps no email,
    hash or name, so the address is free again at once."""

    email: str
    password_hash: str
    display_name: str | None = None
    timezone: str = "UTC"
    day_start: str = "00:00"  # "HH:MM"
    rest_weekdays: list[Weekday] = []  # in week order
    daily_goal_minutes: int = 1
    # The local day the user was in when their day settings (timezone included) last
    # changed, or when they registered: the settings apply from it on, and today never
    # goes back before it (momentum_libs.localday.today). None: an account from before.
    settings_from: str | None = None  # "YYYY-MM-DD"
    settings_from_at: UtcDatetime | None = None  # the first instant of that day
    # The instant of that change (or registration), on the service's clock: analytics
    # reckons the dates a move skipped and the 36-hour grace from it. None: not changed
    # since before it was kept.
    settings_changed_at: UtcDatetime | None = None
    # The local day the account was registered: an import restores the settings of the
    # days before it only. None: an account from before it was kept.
    first_day: str | None = None  # "YYYY-MM-DD"
    created_at: UtcDatetime
    updated_at: UtcDatetime

    class Settings:
        name = "users"
        indexes = [
            IndexModel([("email", 1)], unique=True, name="email_unique"),
            OUTBOX_INDEX,
        ]
