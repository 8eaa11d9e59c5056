from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now in UTC, to the second: what MongoDB stores is what a client reads back."""
    return datetime.now(UTC).replace(microsecond=0)
