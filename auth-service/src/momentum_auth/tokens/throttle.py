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
keys, so a locked email never locks its address, nor the reverse. Each script call
touches one window's two keys, which share a hash tag (one Redis Cluster slot): an
attempt is admitted by the email's window, then the address's, and its email slot is
given back when the address refuses it. Each window stays exact on its own, which is
all the limit needs.
"""

import asyncio
import hashlib
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import structlog
from momentum_libs.metrics import login_failed, login_locked
from momentum_libs.problems import ProblemError
from momentum_libs.redis_client import RedisClient
from redis.exceptions import RedisError

from momentum_auth.settings import AuthSettings

log = structlog.get_logger(__name__)

# How long an admitted attempt may hold its slot: far above one argon2 verification, so
# that only a crashed process's slot ever expires (it then frees itself).
IN_FLIGHT_TTL_MS = 30_000
# How long an attempt waits for others in flight before giving up, and how often it looks.
MAX_WAIT_SECONDS = 10.0
POLL_SECONDS = 0.05

# KEYS: one window's failures, its attempts in flight. ARGV: window ms, capacity, attempt
# id, in-flight ttl ms, 1 to hold a slot when admitted (0: only look).
# Answers {"locked", ms until the oldest failure leaves}, {"wait", 0} or {"admitted", 0}.
_ADMIT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local failed = redis.call('ZCARD', KEYS[1])
if failed >= capacity then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'locked', tonumber(oldest[2]) + window - now}
end
if failed + redis.call('ZCARD', KEYS[2]) >= capacity then
  return {'wait', 0}
end
if ARGV[5] == '1' then
  local ttl = tonumber(ARGV[4])
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {'admitted', 0}
"""

# KEYS: as above. ARGV: attempt id, outcome (failed | succeeded | abandoned), window ms,
# capacity, 1 when a success clears this window's failures (the email's). Answers 1 when
# this failure filled the window (the lock begins), so each lock is counted once.
_JUDGE = """
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == 'failed' then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  if redis.call('ZCARD', KEYS[1]) == tonumber(ARGV[4]) then
    return 1
  end
elseif ARGV[2] == 'succeeded' and ARGV[5] == '1' then
  redis.call('DEL', KEYS[1])
end
return 0
"""

Outcome = Literal["failed", "succeeded", "abandoned"]


def _email_key(email: str) -> str:
    # Hashed: no address in Redis keys, and no ':' from the address to confuse the layout.
    return hashlib.sha256(email.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Window:
    """One moving window's two keys, in one Redis Cluster slot (their ``{…}`` hash tag)."""

    scope: str
    failures: str
    in_flight: str
    capacity: int
    # A success clears the email's failures, never the address's (others share it).
    cleared_on_success: bool

    @property
    def keys(self) -> list[str]:
        return [self.failures, self.in_flight]


class LoginAttempt:
    """One admitted attempt: judge it once, as failed or succeeded."""

    def __init__(self, throttle: "LoginThrottle", windows: list[Window], attempt_id: str) -> None:
        self._throttle = throttle
        self.windows = windows
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
    def __init__(self, redis: RedisClient, settings: AuthSettings) -> None:
        self._redis = redis
        self._prefix = settings.redis_key_prefix + "login-failures:"
        self._window_ms = settings.login_failure_window_seconds * 1000
        # API.md: MORE than N failures lock. A window with room for N + 1 still admits
        # the attempt that may become failure N + 1, and refuses every one after it.
        self._email_capacity = settings.login_max_failures_per_email + 1
        self._address_capacity = settings.login_max_failures_per_address + 1
        self._admit = redis.register_script(_ADMIT)
        self._judge = redis.register_script(_JUDGE)

    def _window(self, scope: str, subject: str, capacity: int) -> Window:
        base = f"{self._prefix}{scope}:{{{subject}}}"
        return Window(scope, f"{base}:failures", f"{base}:in-flight", capacity, scope == "email")

    @asynccontextmanager
    async def attempt(self, email: str, address: str) -> AsyncIterator[LoginAttempt]:
        """Admit an attempt (429 while its email or its address is locked); the body
        judges it. Left unjudged (an error on the way), its slot is simply released."""
        windows = [
            self._window("email", _email_key(email), self._email_capacity),
            self._window("address", address, self._address_capacity),
        ]
        attempt = LoginAttempt(self, windows, uuid.uuid4().hex)
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
                verdict, locked_ms = await self._try_admission(attempt)
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

    async def _try_admission(self, attempt: LoginAttempt) -> tuple[bytes, int]:
        """The email's window first, holding a slot; then the address's, holding one only
        if the email's was held (else it is only asked whether it is locked). A slot held
        in one window is given back when the other refuses."""
        email, address = attempt.windows
        first = await self._admit_in(email, attempt, hold=True)
        if first[0] == b"locked":
            return first
        held = first[0] == b"admitted"
        second = await self._admit_in(address, attempt, hold=held)
        if held and second[0] != b"admitted":
            await self._judge_in(email, attempt, "abandoned")
        return second if second[0] != b"admitted" else first

    async def _admit_in(
        self, window: Window, attempt: LoginAttempt, *, hold: bool
    ) -> tuple[bytes, int]:
        verdict: bytes
        verdict, locked_ms = await self._admit(
            keys=window.keys,
            args=[self._window_ms, window.capacity, attempt.id, IN_FLIGHT_TTL_MS, int(hold)],
        )
        return verdict, int(locked_ms)

    async def _judge_in(self, window: Window, attempt: LoginAttempt, outcome: Outcome) -> bool:
        locked = await self._judge(
            keys=window.keys,
            args=[
                attempt.id,
                outcome,
                self._window_ms,
                window.capacity,
                int(window.cleared_on_success),
            ],
        )
        return bool(locked)

    async def judge(self, attempt: LoginAttempt, outcome: Outcome) -> None:
        locked_now = [await self._judge_in(w, attempt, outcome) for w in attempt.windows]
        if outcome == "failed":
            login_failed()
            login_locked(w.scope for w, now in zip(attempt.windows, locked_now, strict=True) if now)

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
