"""Password hashing: real argon2id, a bounded number of hashes at a time."""

import asyncio
import threading
from typing import Any

from momentum_auth.passwords import Passwords

from .conftest import PASSWORD, SettingsFactory


class CountingHasher:
    """The real pwdlib hasher, counting how many of its calls run at the same time."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def __getattr__(self, name: str) -> Any:
        work = getattr(self._real, name)

        def counted(*args: Any) -> Any:
            with self._lock:
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            try:
                return work(*args)
            finally:
                with self._lock:
                    self.running -= 1

        return counted


async def test_no_more_hashes_run_at_once_than_the_setting_allows(
    make_settings: SettingsFactory,
) -> None:
    passwords = Passwords(make_settings(password_hash_concurrency=2))
    counting = CountingHasher(passwords._hash)
    passwords._hash = counting  # type: ignore[assignment]
    stored = await passwords.hash(PASSWORD)
    results = await asyncio.gather(
        *(passwords.verify(PASSWORD if n % 2 else "wrong password", stored) for n in range(8)),
        *(passwords.verify(PASSWORD, None) for _ in range(4)),
        *(passwords.hash(PASSWORD) for _ in range(4)),
    )
    assert [ok for ok, _ in results[:8]] == [n % 2 == 1 for n in range(8)]
    assert all(ok is False for ok, _ in results[8:12])
    assert all(isinstance(h, str) and h.startswith("$argon2id$") for h in results[12:])
    assert counting.most_at_once == 2
    assert counting.running == 0
