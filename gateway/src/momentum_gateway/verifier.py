"""The libs verifier, plus a memory of tokens already verified.

A client sends the same access token for its whole life (15 minutes), and parsing
and checking a JWT is the costliest step of a proxied request. A token string whose
signature and claims were verified once stays verified until it expires, so it is
remembered (bounded, oldest first out); the session-revocation lookup in Redis still
runs on EVERY request, so logout and revocation take effect at once.
"""

import time

from momentum_libs.tokens import (
    AccessClaims,
    AccessTokenVerifier,
    KeyLookup,
    SessionRevocations,
    TokenInvalidError,
)

DEFAULT_MAX_REMEMBERED = 10_000


class RememberingVerifier(AccessTokenVerifier):
    def __init__(
        self,
        keys: KeyLookup,
        issuer: str,
        audience: str,
        revocations: SessionRevocations,
        *,
        max_remembered: int = DEFAULT_MAX_REMEMBERED,
    ) -> None:
        super().__init__(keys, issuer, audience, revocations)
        self._session_revocations = revocations
        self._max_remembered = max_remembered
        self._verified: dict[str, AccessClaims] = {}

    async def verify(self, token: str) -> AccessClaims:
        claims = await self.signed_claims(token)
        if await self._session_revocations.is_revoked(claims.session_id):
            raise TokenInvalidError("session has ended")
        return claims

    async def signed_claims(self, token: str) -> AccessClaims:
        """The claims of a token whose signature and claims hold, revocation NOT checked:
        enough to tell who sends a request (client_limits.py), never to let it in."""
        claims = self._verified.get(token)
        if claims is not None and claims.expires_at > time.time():
            return claims
        if claims is not None:
            del self._verified[token]
        claims = await self._decode(token)
        self._remember(token, claims)
        return claims

    def _remember(self, token: str, claims: AccessClaims) -> None:
        if self._max_remembered <= 0:
            return
        while len(self._verified) >= self._max_remembered:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = claims
