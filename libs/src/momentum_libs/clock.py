"""The clock of every service, and the test clock that decides what "today" is in tests.

``utcnow`` is the real clock: timestamps, token lifetimes, leases and back-offs always
use it. What a user's *today* is (``momentum_libs.localday``) is asked of a
:class:`Clock` instead, so that cross-service tests can put the running stack on a DST
day or past a user's midnight without waiting for one. A service is started with a test
clock only through ``MOMENTUM_TEST_CLOCK_FILE``, which production refuses
(``momentum_libs.settings``).
"""

from datetime import UTC, datetime
from pathlib import Path


def utcnow() -> datetime:
    """Now in UTC, truncated to what BSON keeps (milliseconds): what is stored is what a
    later read gives back, so keyset cursors and comparisons are exact."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


class Clock:
    """The instant "today" is computed at: the real one."""

    def now(self) -> datetime:
        return utcnow()


class FileClock(Clock):
    """Tests only: now is the instant written in ``path`` (ISO 8601 with an offset), read
    on every call so a test can move it while the services run; the real clock while the
    file is missing or empty."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            text = ""
        if not text:
            return utcnow()
        instant = datetime.fromisoformat(text)
        if instant.tzinfo is None:
            raise ValueError(f"the test clock file holds {text!r}, an instant without an offset")
        return instant.astimezone(UTC)

    def set(self, instant: datetime | str) -> None:
        """Move the clock of every service reading ``path`` (tests write it this way)."""
        text = instant if isinstance(instant, str) else instant.isoformat()
        self.path.write_text(text)

    def reset(self) -> None:
        """Back to the real clock."""
        self.path.unlink(missing_ok=True)


def clock_for(test_clock_file: Path | None) -> Clock:
    return Clock() if test_clock_file is None else FileClock(test_clock_file)
