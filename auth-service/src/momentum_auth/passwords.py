"""argon2id password hashing (pwdlib), off the event loop, constant-time for unknown users,
and a bounded number at a time."""

import asyncio
import secrets
from collections.abc import Callable
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from momentum_auth.settings import AuthSettings

_R = TypeVar("_R")


class Passwords:
    def __init__(self, settings: AuthSettings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.argon2_time_cost,
                    memory_cost=settings.argon2_memory_cost_kib,
                    parallelism=settings.argon2_parallelism,
                ),
            )
        )
        # Verified against when the email is unknown, so that answer takes as long.
        self._dummy_hash = self._hash.hash(secrets.token_urlsafe(16))
        # One hash already runs argon2_parallelism lanes on as many cores: hashes side by
        # side add no throughput, only CPU contention. Measured (bench login_flood): 60
        # logins at once from one client put another user's GET /auth/me p99 near a second;
        # waiting here, on the event loop, leaves the CPU to the requests that need no hash.
        self._slots = asyncio.Semaphore(settings.password_hash_concurrency)

    async def _in_a_slot(self, work: Callable[..., _R], *args: str) -> _R:
        async with self._slots:
            return await asyncio.to_thread(work, *args)

    async def hash(self, password: str) -> str:
        return await self._in_a_slot(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """(matches, a new hash if the parameters changed); ``None`` hash: burn the same time."""
        if password_hash is None:
            await self._in_a_slot(self._hash.verify, password, self._dummy_hash)
            return False, None
        return await self._in_a_slot(self._hash.verify_and_update, password, password_hash)
