"""A clock that stands still, for tests that judge days at a chosen instant."""

from datetime import datetime

from momentum_libs.clock import Clock


class FixedClock(Clock):
    def __init__(self, at: datetime | str) -> None:
        self.at = datetime.fromisoformat(at) if isinstance(at, str) else at

    def now(self) -> datetime:
        return self.at
