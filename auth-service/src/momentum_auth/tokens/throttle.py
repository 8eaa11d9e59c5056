"""Login throttling: failed attempts per email and per client address, moving windows.

Built on ``limits`` (moving window, async Redis storage through redis-py). A login is
refused while a window is full, with ``Retry-After`` until its oldest failure leaves
the window. The two windows are independent keys, so a locked email never locks its
address, nor the reverse.
"""

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
        # API.md: MORE than N failures lock. A window holding N + 1 still admits the
        # attempt that may become failure N + 1, and refuses every one after it.
        self._per_email = RateLimitItemPerSecond(
            settings.login_max_failures_per_email + 1, window, namespace="email"
        )
        self._per_address = RateLimitItemPerSecond(
            settings.login_max_failures_per_address + 1, window, namespace="address"
        )

    async def begin(self, email: str, address: str) -> None:
        """Admit a login attempt, or raise 429 if its address or its email is locked.

        The attempt is counted against the email up front, atomically (the window's
        acquire is one Lua script), so parallel guesses cannot overshoot the limit; a
        success then clears the email's count (:meth:`succeeded`). The address counts
        failures only (:meth:`failed`)."""
        try:
            address_stats = await self._limiter.get_window_stats(self._per_address, address)
            if address_stats.remaining <= 0:
                raise _locked(address_stats.reset_time)
            if not await self._limiter.hit(self._per_email, _email_key(email)):
                email_stats = await self._limiter.get_window_stats(
                    self._per_email, _email_key(email)
                )
                raise _locked(email_stats.reset_time)
        except (RedisError, OSError) as exc:
            raise _unavailable() from exc

    async def failed(self, address: str) -> None:
        try:
            await self._limiter.hit(self._per_address, address)
        except (RedisError, OSError) as exc:
            raise _unavailable() from exc

    async def succeeded(self, email: str) -> None:
        try:
            await self._limiter.clear(self._per_email, _email_key(email))
        except (RedisError, OSError) as exc:
            raise _unavailable() from exc


def _locked(reset_time: float) -> ProblemError:
    retry_after = max(1, math.ceil(reset_time - time.time()))
    return ProblemError(
        429,
        "Too many failed logins; try again later.",
        type_slug="too-many-login-failures",
        headers={"Retry-After": str(retry_after)},
    )


def _unavailable() -> ProblemError:
    return ProblemError(
        503, "Logins cannot be checked right now; try again shortly.", headers={"Retry-After": "5"}
    )
