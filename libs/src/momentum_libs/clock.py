"""The clock of every service."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now in UTC, truncated to what BSON keeps (milliseconds): what is stored is what a
    later read gives back, so keyset cursors and comparisons are exact."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)
