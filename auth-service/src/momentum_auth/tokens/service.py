"""Tokens: login, refresh-token rotation with reuse detection, logout; the sessions behind them."""

import hashlib
import secrets
import time
import uuid
from datetime import timedelta

import structlog
from momentum_libs.clock import utcnow
from momentum_libs.deps import unauthorized
from momentum_libs.problems import ProblemError
from momentum_libs.tokens import AccessClaims, SessionRevocations
from redis.exceptions import RedisError

from momentum_auth.keys.service import SigningKey
from momentum_auth.passwords import Passwords
from momentum_auth.settings import AuthSettings
from momentum_auth.tokens.grace import seal, unseal
from momentum_auth.tokens.models import RefreshToken, Session
from momentum_auth.tokens.repository import TokenRepository
from momentum_auth.tokens.schemas import TokenPair
from momentum_auth.tokens.throttle import LoginThrottle
from momentum_auth.users.models import User
from momentum_auth.users.repository import UserRepository

log = structlog.get_logger(__name__)

LOGIN_FAILED = "Wrong email or password."
REFRESH_INVALID = "The refresh token is not valid."


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(
        self,
        settings: AuthSettings,
        tokens: TokenRepository,
        users: UserRepository,
        passwords: Passwords,
        signing_key: SigningKey,
        revocations: SessionRevocations,
        throttle: LoginThrottle,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._users = users
        self._passwords = passwords
        self._key = signing_key
        self._revocations = revocations
        self._throttle = throttle

    async def confirm_password(self, user: User, password: str, address: str) -> bool:
        """A password re-entered by a signed-in user is a guess like a login's: it counts
        against the same windows, so a stolen access token cannot brute-force it."""
        async with self._throttle.attempt(user.email, address) as attempt:
            ok, _ = await self._passwords.verify(password, user.password_hash)
            await (attempt.succeeded() if ok else attempt.failed())
        return ok

    # -- login, refresh, logout ----------------------------------------------------------
    async def login(self, email: str, password: str, address: str) -> TokenPair:
        async with self._throttle.attempt(email, address) as attempt:
            user = await self._users.get_by_email(email)
            # An unknown email costs one argon2 verification too: timing tells nothing.
            ok, new_hash = await self._passwords.verify(
                password, user.password_hash if user is not None else None
            )
            if user is None or not ok:
                await attempt.failed()
                log.info("login_failed", known_email=user is not None)
                raise unauthorized(LOGIN_FAILED)
            await attempt.succeeded()
        if new_hash is not None:
            # Cost parameters changed: upgrade the hash; a lost race just retries next login.
            await self._users.write(user, {"password_hash": new_hash}, None)
        session = await self._tokens.create_session(str(user.id))
        log.info("login", user_id=session.user_id, session_id=str(session.id))
        return await self._issue(session)

    async def refresh(self, refresh_token: str) -> TokenPair:
        token_hash = hash_refresh_token(refresh_token)
        token = await self._tokens.get_refresh_token(token_hash)
        if token is None or token.expires_at <= utcnow():
            raise unauthorized(REFRESH_INVALID)
        session = await self._tokens.get_session(token.user_id, token.session_id)
        if session is None or session.revoked:
            raise unauthorized(REFRESH_INVALID)
        if not token.spent:
            pair = self._mint(session)
            # The new token is stored before the old one is spent: a concurrent presentation
            # that reads the sealed pair gets a refresh token that already works.
            await self._store(pair, session)
            if await self._tokens.spend_refresh_token(
                token_hash, seal(refresh_token, pair), _now_ms()
            ):
                return pair
            # A concurrent presentation spent it first: ours is never handed out.
            await self._tokens.delete_refresh_token(hash_refresh_token(pair.refresh_token))
            token = await self._tokens.get_refresh_token(token_hash)
            if token is None:
                raise unauthorized(REFRESH_INVALID)
        return await self._replay(refresh_token, token)

    async def _replay(self, refresh_token: str, token: RefreshToken) -> TokenPair:
        """A spent token again: within the grace, the pair it was rotated into (the client
        lost the response); after it, whoever holds it, the session is compromised."""
        grace_ms = self._settings.refresh_reuse_grace_seconds * 1000
        if (
            token.successor is not None
            and token.spent_at_ms is not None
            and _now_ms() - token.spent_at_ms <= grace_ms
        ):
            pair = unseal(refresh_token, token.successor)
            if pair is not None:
                return pair
        log.warning("refresh_token_reuse", user_id=token.user_id, session_id=token.session_id)
        await self._revoke(token.user_id, [token.session_id])
        raise unauthorized(REFRESH_INVALID)

    async def logout(self, claims: AccessClaims, refresh_token: str) -> None:
        token = await self._tokens.get_refresh_token(hash_refresh_token(refresh_token))
        if token is None or token.user_id != claims.user_id:
            raise unauthorized(REFRESH_INVALID)
        await self._revoke(token.user_id, [token.session_id])

    # -- revocation, for the user service --------------------------------------------------
    async def end_other_sessions(self, user_id: str, keep_session_id: str) -> None:
        ids = [sid for sid in await self._tokens.session_ids_of(user_id) if sid != keep_session_id]
        await self._revoke(user_id, ids)

    async def end_all_sessions(self, user_id: str) -> None:
        await self._revoke(user_id, await self._tokens.session_ids_of(user_id))

    async def erase(self, user_id: str) -> None:
        await self._tokens.erase_user(user_id)

    async def _revoke(self, user_id: str, session_ids: list[str]) -> None:
        if not session_ids:
            return
        # Redis first: access tokens die everywhere at once (and so do any minted later,
        # since they carry the same sid). Then MongoDB: refresh tokens die. Should Redis be
        # down, nothing is marked yet and a retry revokes the same sessions again.
        try:
            await self._revocations.revoke(*session_ids)
        except (RedisError, OSError) as exc:
            raise ProblemError(
                503,
                "Sessions cannot be ended right now; try again shortly.",
                headers={"Retry-After": "5"},
            ) from exc
        await self._tokens.revoke_sessions(user_id, session_ids)

    # -- tokens --------------------------------------------------------------------------
    async def _issue(self, session: Session) -> TokenPair:
        pair = self._mint(session)
        await self._store(pair, session)
        return pair

    async def _store(self, pair: TokenPair, session: Session) -> None:
        expires_at = utcnow() + timedelta(seconds=self._settings.refresh_token_ttl_seconds)
        await self._tokens.add_refresh_token(
            hash_refresh_token(pair.refresh_token), session, expires_at
        )

    def _mint(self, session: Session) -> TokenPair:
        refresh_token = secrets.token_urlsafe(32)
        ttl = self._settings.access_token_ttl_seconds
        now = int(time.time())
        access_token = self._key.sign(
            {
                "iss": self._settings.jwt_issuer,
                "aud": self._settings.jwt_audience,
                "sub": session.user_id,
                "sid": str(session.id),
                "jti": uuid.uuid4().hex,
                "iat": now,
                "exp": now + ttl,
                "token_use": "access",
            }
        )
        return TokenPair(access_token=access_token, refresh_token=refresh_token, expires_in=ttl)


def _now_ms() -> int:
    return int(time.time() * 1000)
