"""Access-token verification, shared by the gateway and every service.

auth-service signs; everyone else verifies with the public keys it serves as a
JWKS. Algorithms are pinned (no ``alg`` from the token is trusted), ``iss``,
``aud``, ``exp`` and ``iat`` are required, and a session revoked in Redis kills
its tokens before they expire.

A client sends the same access token for its whole life (15 minutes), and parsing and
checking a JWT is the costliest step of an authenticated request after its database
round trips. A token string whose signature and claims were verified once stays
verified until it expires, so the verifier remembers it (bounded, least recently used
first out) with the key that verified it. A remembered token is served only while its
``kid`` still names that key, so a key withdrawn from the JWKS (a leaked key, rotated
out) stops its tokens at the next JWKS refresh, as it stops tokens never seen. The
session-revocation lookup in Redis still runs on EVERY request, so logout and
revocation take effect at once.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from redis.exceptions import RedisError

from momentum_libs.memory import remember
from momentum_libs.metrics import revocation_check_failed
from momentum_libs.redis_client import RedisClient

ALGORITHMS: tuple[str, ...] = ("EdDSA",)
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "sid", "jti")
DEFAULT_MAX_REMEMBERED = 10_000
"""Verified tokens a verifier remembers: ~10k clients active within a token's life, a
few MB at most."""


class TokenInvalidError(Exception):
    """The token must be refused with 401; the message says why (safe to show)."""


class VerificationUnavailableError(Exception):
    """A token cannot be judged right now: a dependency is down (fail closed: 503, not 401)."""


class RevocationUnavailableError(VerificationUnavailableError):
    """Redis could not be asked whether the session is revoked."""


class KeysUnavailableError(VerificationUnavailableError):
    """No signing key has been fetched yet and the JWKS cannot be reached."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    token_id: str
    expires_at: int


class SessionRevocations:
    """Revoked session ids in Redis, each kept as long as a token of it could live."""

    def __init__(
        self, redis: RedisClient, keep_seconds: int, prefix: str = "momentum:revoked-session:"
    ):
        self._redis = redis
        self._keep_seconds = keep_seconds
        self._prefix = prefix

    async def revoke(self, *session_ids: str) -> None:
        if not session_ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid in session_ids:
                pipe.set(self._prefix + sid, "1", ex=self._keep_seconds)
            await pipe.execute()

    async def is_revoked(self, session_id: str) -> bool:
        try:
            return bool(await self._redis.exists(self._prefix + session_id))
        except (RedisError, OSError) as exc:
            revocation_check_failed()
            raise RevocationUnavailableError("session store unavailable") from exc


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token's claims, and the key (under its kid) that verified them."""

    claims: AccessClaims
    kid: str
    key: jwt.PyJWK


KeyLookup = Callable[[str], Awaitable[jwt.PyJWK]]


class JwksKeys:
    """Public keys fetched from a JWKS URL, cached, refetched on an unknown ``kid``.

    A miss refetches at most once per ``min_refetch_s`` (counted from the last attempt,
    failed or not) so forged ``kid``s cannot make us hammer auth-service, and an
    auth-service that is down costs one timeout per interval, not one per request:
    meanwhile the keys already held keep serving.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        cache_seconds: int = 300,
        min_refetch_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._cache_seconds = cache_seconds
        self._min_refetch_s = min_refetch_s
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        response = await self._client.get(self._url, timeout=5.0)
        response.raise_for_status()
        keyset = jwt.PyJWKSet.from_dict(response.json())
        self._keys = {key.key_id: key for key in keyset.keys if key.key_id}
        self._fetched_at = self._clock()

    def _should_refresh(self, kid: str) -> bool:
        if self._attempted_at is None:
            return True  # never fetched
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._cache_seconds
        if kid in self._keys and not stale:
            return False
        # Holding no key at all, retry sooner: every token fails until a fetch succeeds.
        interval = self._min_refetch_s if self._keys else min(self._min_refetch_s, 1.0)
        return now - self._attempted_at >= interval

    async def __call__(self, kid: str) -> jwt.PyJWK:
        # While a fetch is in flight, wait for it rather than judge the keys held before it.
        if self._lock.locked() or self._should_refresh(kid):
            async with self._lock:
                if self._should_refresh(kid):  # another request may have just fetched
                    try:
                        await self._refresh()
                    except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                        if not self._keys:
                            raise KeysUnavailableError("signing keys unavailable") from exc
        if not self._keys:
            raise KeysUnavailableError("signing keys unavailable")
        key = self._keys.get(kid)
        if key is None:
            raise TokenInvalidError("unknown signing key")
        return key


class AccessTokenVerifier:
    def __init__(
        self,
        keys: KeyLookup,
        issuer: str,
        audience: str,
        revocations: SessionRevocations,
        algorithms: Sequence[str] = ALGORITHMS,
        leeway_s: int = 5,
        *,
        max_remembered: int = DEFAULT_MAX_REMEMBERED,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._revocations = revocations
        self._algorithms = list(algorithms)
        self._leeway_s = leeway_s
        self._max_remembered = max_remembered
        self._verified: dict[str, _Verified] = {}

    async def verify(self, token: str) -> AccessClaims:
        claims = await self.signed_claims(token)
        if await self._revocations.is_revoked(claims.session_id):
            raise TokenInvalidError("session has ended")
        return claims

    async def signed_claims(self, token: str) -> AccessClaims:
        """The claims of a token whose signature and claims hold, revocation NOT checked:
        enough to tell who sends a request (the gateway's client limits), never to let
        it in."""
        verified = self._verified.get(token)
        if verified is not None:
            # Not past ``exp`` even within the leeway: a token near its end is checked in
            # full; nor once its key is no longer the one its kid names (the lookup is
            # the keys' cache, so it raises for a kid withdrawn from the JWKS).
            del self._verified[token]
            fresh = verified.claims.expires_at > time.time()
            if fresh and await self._keys(verified.kid) is verified.key:
                remember(self._verified, token, verified, self._max_remembered)
                return verified.claims
        verified = await self._decode(token)
        remember(self._verified, token, verified, self._max_remembered)
        return verified.claims

    async def _decode(self, token: str) -> "_Verified":
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenInvalidError("malformed token") from exc
        if header.get("alg") not in self._algorithms:
            raise TokenInvalidError("token algorithm not accepted")
        typ = header.get("typ", "JWT")
        if not isinstance(typ, str) or typ.upper() not in ("JWT", "AT+JWT"):
            raise TokenInvalidError("not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenInvalidError("token has no key id")
        key = await self._keys(kid)
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenInvalidError("token has expired") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalidError("token is not valid") from exc
        if payload.get("token_use", "access") != "access":
            raise TokenInvalidError("not an access token")
        claims = AccessClaims(
            user_id=str(payload["sub"]),
            session_id=str(payload["sid"]),
            token_id=str(payload["jti"]),
            expires_at=int(payload["exp"]),
        )
        return _Verified(claims, kid, key)


class StaticKeys:
    """Key lookup over keys held in memory (auth-service's own keys, or a test signer's)."""

    def __init__(self, keys: dict[str, jwt.PyJWK]) -> None:
        self._keys = keys

    async def __call__(self, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is None:
            raise TokenInvalidError("unknown signing key")
        return key
