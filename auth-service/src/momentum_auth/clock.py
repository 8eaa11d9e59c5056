from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def utcnow() -> datetime:
    """Now in UTC, to the second: what MongoDB stores is what a client reads back."""
    return datetime.now(UTC).replace(microsecond=0)


def _as_utc(value: datetime) -> datetime:
    # The embedded MongoDB server stores a datetime written by ``$set`` as a naive string;
    # everything we write is UTC, so a naive value read back is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
