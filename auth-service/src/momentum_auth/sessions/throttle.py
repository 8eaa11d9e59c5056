"""Login throttling: failed attempts per email and per client address, moving windows.

Built on ``limits`` (moving window, async Redis storage through redis-py). Only
failures are counted (``hit``); a login is refused while a window is full (``test``),
with ``Retry-After`` until its oldest failure leaves the window. The two windows are
independent keys, so a locked email never locks its address, nor the reverse.
"""

import asyncio
import hashlib
import math
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from momentum_libs.problems import ProblemError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from momentum_auth.settings import AuthSettings


def _email_key(email: str) -> str:
    # Hashed: no address in Redis keys, and no '/' to confuse the key layout.
    return hashlib.sha256(email.encode()).hexdigest()


class LoginThrottle:
    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        storage = RedisStorage(
            "async+" + settings.redis_url,
            implementation="redispy",
            key_prefix=settings.redis_key_prefix + "login-failures",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # passed through
        )
        self._limiter = MovingWindowRateLimiter(storage)
        window = settings.login_failure_window_seconds
        self._per_email = RateLimitItemPerSecond(
            settings.login_max_failures_per_email, window, namespace="email"
        )
        self._per_address = RateLimitItemPerSecond(
            settings.login_max_failures_per_address, window, namespace="address"
        )

    async def ensure_allowed(self, email: str, address: str) -> None:
        """Raise 429 if this email or this address has used up its failures."""
        try:
            email_stats, address_stats = await asyncio.gather(
                self._limiter.get_window_stats(self._per_email, _email_key(email)),
                self._limiter.get_window_stats(self._per_address, address),
            )
        except (RedisError, OSError) as exc:
            raise _unavailable() from exc
        waits = [s.reset_time for s in (email_stats, address_stats) if s.remaining <= 0]
        if waits:
            retry_after = max(1, math.ceil(max(waits) - time.time()))
            raise ProblemError(
                429,
                "Too many failed logins; try again later.",
                type_slug="too-many-login-failures",
                headers={"Retry-After": str(retry_after)},
            )

    async def record_failure(self, email: str, address: str) -> None:
        try:
            await asyncio.gather(
                self._limiter.hit(self._per_email, _email_key(email)),
                self._limiter.hit(self._per_address, address),
            )
        except (RedisError, OSError) as exc:
            raise _unavailable() from exc

    async def clear_email(self, email: str) -> None:
        try:
            await self._limiter.clear(self._per_email, _email_key(email))
        except (RedisError, OSError) as exc:
            raise _unavailable() from exc


def _unavailable() -> ProblemError:
    return ProblemError(
        503, "Logins cannot be checked right now; try again shortly.", headers={"Retry-After": "5"}
    )
