"""argon2id password hashing (pwdlib), off the event loop, constant-time for unknown users."""

import asyncio
import secrets

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from momentum_auth.settings import AuthSettings


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

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """(matches, a new hash if the parameters changed); ``None`` hash: burn the same time."""
        if password_hash is None:
            await asyncio.to_thread(self._hash.verify, password, self._dummy_hash)
            return False, None
        return await asyncio.to_thread(self._hash.verify_and_update, password, password_hash)
