"""Timestamps: stored as UTC datetimes, answered as RFC 3339 UTC to the second (``…T09:30:00Z``).

Every service answers timestamps in this one format, whatever precision it stores.
"""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer, WithJsonSchema


def as_utc(value: datetime) -> datetime:
    # The embedded MongoDB server gives back a datetime written by ``$set`` without its
    # zone; everything we write is UTC, so a naive value read back is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_milliseconds(value: datetime) -> datetime:
    """``value`` in UTC at MongoDB's precision, so what is sent equals what is read back."""
    value = as_utc(value)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def rfc3339(value: datetime) -> str:
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""A stored datetime, always UTC-aware once read."""

Timestamp = Annotated[
    datetime,
    AfterValidator(as_utc),
    PlainSerializer(rfc3339, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A timestamp in an answer: serialized as ``YYYY-MM-DDTHH:MM:SSZ``."""
