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
    created_at: UtcDatetime
    updated_at: UtcDatetime

    class Settings:
        name = "users"
        indexes = [
            IndexModel([("email", 1)], unique=True, name="email_unique"),
            OUTBOX_INDEX,
        ]
