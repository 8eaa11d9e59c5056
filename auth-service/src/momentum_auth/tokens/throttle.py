"""Login throttling: failed attempts per email and per client address, moving windows.

Each window is two Redis sorted sets: the failures of the last ``window`` seconds, and
the attempts in flight (admitted, password not yet checked). Only failures lock; a
success clears the email's failures. The in-flight set is what keeps the limit exact
whatever the concurrency: an attempt is admitted only while failures + attempts in
flight leave room for it to become one more failure, so N parallel guesses can never
overshoot. An attempt that finds the room taken by attempts in flight (not by
failures) waits for them to be judged instead of being refused: parallel correct
logins therefore all succeed, and parallel wrong ones lock exactly at the limit.

``limits`` (used before) only counts hits, with no way to hold a slot and then either
keep or release it, hence two short Lua scripts (Redis 6.2 and 7 alike: TIME, ZADD,
ZREM, ZCARD, ZRANGE, ZREMRANGEBYSCORE, PEXPIRE, DEL). The two windows are independent
keys, so a locked email never locks its address, nor the reverse.
"""

import asyncio
import hashlib
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import structlog
from momentum_libs.metrics import LOGIN_LOCK_SCOPES, login_failed, login_locked
from momentum_libs.problems import ProblemError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from momentum_auth.settings import AuthSettings

log = structlog.get_logger(__name__)

# How long an admitted attempt may hold its slot: far above one argon2 verification, so
# that only a crashed process's slot ever expires (it then frees itself).
IN_FLIGHT_TTL_MS = 30_000
# How long an attempt waits for others in flight before giving up, and how often it looks.
MAX_WAIT_SECONDS = 10.0
POLL_SECONDS = 0.05

# KEYS: email failures, email in flight, address failures, address in flight.
# ARGV: window ms, email capacity, address capacity, attempt id, in-flight ttl ms.
# Answers {"locked", ms until the oldest failure leaves}, {"wait", 0} or {"admitted", 0}.
_ADMIT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
local must_wait = false
for w = 0, 1 do
  local failures, in_flight, capacity = KEYS[2 * w + 1], KEYS[2 * w + 2], tonumber(ARGV[2 + w])
  redis.call('ZREMRANGEBYSCORE', failures, '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', in_flight, '-inf', now)
  local failed = redis.call('ZCARD', failures)
  if failed >= capacity then
    local oldest = redis.call('ZRANGE', failures, 0, 0, 'WITHSCORES')
    return {'locked', tonumber(oldest[2]) + window - now}
  end
  if failed + redis.call('ZCARD', in_flight) >= capacity then
    must_wait = true
  end
end
if must_wait then
  return {'wait', 0}
end
local ttl = tonumber(ARGV[5])
for w = 0, 1 do
  redis.call('ZADD', KEYS[2 * w + 2], now + ttl, ARGV[4])
  redis.call('PEXPIRE', KEYS[2 * w + 2], ttl)
end
return {'admitted', 0}
"""

# KEYS: as above. ARGV: attempt id, outcome (failed | succeeded | abandoned), window ms,
# email capacity, address capacity. Answers {email locked now, address locked now}: 1 for
# a window this failure filled (the lock begins), so each lock is counted once.
_JUDGE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local locked = {0, 0}
if ARGV[2] == 'failed' then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  for w = 0, 1 do
    local failures = KEYS[2 * w + 1]
    redis.call('ZREMRANGEBYSCORE', failures, '-inf', now - tonumber(ARGV[3]))
    redis.call('ZADD', failures, now, ARGV[1])
    redis.call('PEXPIRE', failures, ARGV[3])
    if redis.call('ZCARD', failures) == tonumber(ARGV[4 + w]) then
      locked[w + 1] = 1
    end
  end
elseif ARGV[2] == 'succeeded' then
  redis.call('DEL', KEYS[1])
end
return locked
"""

Outcome = Literal["failed", "succeeded", "abandoned"]


def _email_key(email: str) -> str:
    # Hashed: no address in Redis keys, and no ':' from the address to confuse the layout.
    return hashlib.sha256(email.encode()).hexdigest()


class LoginAttempt:
    """One admitted attempt: judge it once, as failed or succeeded."""

    def __init__(self, throttle: "LoginThrottle", keys: list[str], attempt_id: str) -> None:
        self._throttle = throttle
        self.keys = keys
        self.id = attempt_id
        self.judged = False

    async def failed(self) -> None:
        await self._judge("failed")

    async def succeeded(self) -> None:
        await self._judge("succeeded")

    async def _judge(self, outcome: Outcome) -> None:
        self.judged = True
        try:
            await self._throttle.judge(self, outcome)
        except (RedisError, OSError) as exc:
            raise _unavailable() from exc


class LoginThrottle:
    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self._redis = redis
        self._prefix = settings.redis_key_prefix + "login-failures:"
        self._window_ms = settings.login_failure_window_seconds * 1000
        # API.md: MORE than N failures lock. A window with room for N + 1 still admits
        # the attempt that may become failure N + 1, and refuses every one after it.
        self._email_capacity = settings.login_max_failures_per_email + 1
        self._address_capacity = settings.login_max_failures_per_address + 1
        self._admit = redis.register_script(_ADMIT)
        self._judge = redis.register_script(_JUDGE)

    @asynccontextmanager
    async def attempt(self, email: str, address: str) -> AsyncIterator[LoginAttempt]:
        """Admit an attempt (429 while its email or its address is locked); the body
        judges it. Left unjudged (an error on the way), its slot is simply released."""
        keys = [
            f"{self._prefix}email:{_email_key(email)}:failures",
            f"{self._prefix}email:{_email_key(email)}:in-flight",
            f"{self._prefix}address:{address}:failures",
            f"{self._prefix}address:{address}:in-flight",
        ]
        attempt = LoginAttempt(self, keys, uuid.uuid4().hex)
        await self._wait_for_admission(attempt)
        try:
            yield attempt
        finally:
            if not attempt.judged:
                await self._release(attempt)

    async def _wait_for_admission(self, attempt: LoginAttempt) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_WAIT_SECONDS
        while True:
            try:
                verdict, locked_ms = await self._admit(
                    keys=attempt.keys,
                    args=[
                        self._window_ms,
                        self._email_capacity,
                        self._address_capacity,
                        attempt.id,
                        IN_FLIGHT_TTL_MS,
                    ],
                )
            except (RedisError, OSError) as exc:
                raise _unavailable() from exc
            if verdict == b"admitted":
                return
            if verdict == b"locked":
                raise _locked(math.ceil(int(locked_ms) / 1000))
            if loop.time() >= deadline:
                # Not locked, only crowded: say so, and come back in a second.
                raise ProblemError(
                    429,
                    "Too many logins in flight for this account or address; try again.",
                    type_slug="too-many-logins-in-flight",
                    headers={"Retry-After": "1"},
                )
            await asyncio.sleep(POLL_SECONDS)

    async def judge(self, attempt: LoginAttempt, outcome: Outcome) -> None:
        locked = await self._judge(
            keys=attempt.keys,
            args=[
                attempt.id,
                outcome,
                self._window_ms,
                self._email_capacity,
                self._address_capacity,
            ],
        )
        if outcome == "failed":
            login_failed()
            login_locked(s for s, now in zip(LOGIN_LOCK_SCOPES, locked, strict=True) if now)

    async def _release(self, attempt: LoginAttempt) -> None:
        try:
            await self.judge(attempt, "abandoned")
        except (RedisError, OSError):
            # The slot frees itself after IN_FLIGHT_TTL_MS; the original error matters more.
            log.warning("login_attempt_not_released")


def _locked(retry_after: int) -> ProblemError:
    return ProblemError(
        429,
        "Too many failed logins; try again later.",
        type_slug="too-many-login-failures",
        headers={"Retry-After": str(max(1, retry_after))},
    )


def _unavailable() -> ProblemError:
    return ProblemError(
        503, "Logins cannot be checked right now; try again shortly.", headers={"Retry-After": "5"}
    )
