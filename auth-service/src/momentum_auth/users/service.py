"""Users: registration, profile changes, password change, deletion — and their events."""

from typing import Any

import structlog
from beanie import PydanticObjectId
from momentum_libs.clock import utcnow
from momentum_libs.deps import unauthorized
from momentum_libs.events import Envelope, EventType, UserDeletedPayload, UserPayload
from momentum_libs.problems import ProblemError
from momentum_libs.relay import OutboxRelay
from momentum_libs.tokens import AccessClaims

from momentum_auth.passwords import Passwords
from momentum_auth.tokens.service import TokenService
from momentum_auth.users.models import User
from momentum_auth.users.repository import EmailTakenError, UserRepository
from momentum_auth.users.schemas import UserCreate, UserUpdate

log = structlog.get_logger(__name__)

# Writes are guarded by the document version (the outbox relay bumps it too): re-read, retry.
MAX_ATTEMPTS = 5


class UserService:
    def __init__(
        self,
        users: UserRepository,
        tokens: TokenService,
        passwords: Passwords,
        relay: OutboxRelay,
    ) -> None:
        self._users = users
        self._tokens = tokens
        self._passwords = passwords
        self._relay = relay

    async def register(self, data: UserCreate) -> User:
        now = utcnow()
        user = User(
            email=data.email,
            password_hash=await self._passwords.hash(data.password),
            display_name=data.display_name,
            timezone=data.timezone,
            created_at=now,
            updated_at=now,
        )
        # The id is known before the insert, so the event can name it in the same write.
        user.id = PydanticObjectId()
        event = Envelope.create(
            EventType.USER_REGISTERED, str(user.id), UserPayload(timezone=user.timezone)
        )
        try:
            await self._users.insert(user, event)
        except EmailTakenError as exc:
            raise ProblemError(
                409, "An account with this email already exists.", type_slug="email-taken"
            ) from exc
        self._relay.notify()
        log.info("user_registered", user_id=str(user.id))
        return user

    async def get(self, claims: AccessClaims) -> User:
        user = await self._users.get(claims.user_id)
        if user is None:
            raise unauthorized("The account of this token no longer exists.")
        return user

    async def update(self, claims: AccessClaims, data: UserUpdate, address: str) -> User:
        given = data.model_fields_set
        for _ in range(MAX_ATTEMPTS):
            user = await self.get(claims)
            fields: dict[str, Any] = {}
            if "display_name" in given and data.display_name != user.display_name:
                fields["display_name"] = data.display_name
            if data.timezone is not None and data.timezone != user.timezone:
                fields["timezone"] = data.timezone
            profile_changed = bool(fields)
            if data.password is not None:
                assert data.current_password is not None  # the schema demands it
                if not await self._tokens.confirm_password(user, data.current_password, address):
                    raise ProblemError(
                        400,
                        "The current password is wrong.",
                        type_slug="wrong-password",
                        title="Wrong password",
                    )
                fields["password_hash"] = await self._passwords.hash(data.password)
            if not fields:
                return user
            fields["updated_at"] = utcnow()
            event = None
            if profile_changed:
                timezone = fields.get("timezone", user.timezone)
                event = Envelope.create(
                    EventType.USER_UPDATED, claims.user_id, UserPayload(timezone=timezone)
                )
            if await self._users.update(user, fields, event):
                if event is not None:
                    self._relay.notify()
                if "password_hash" in fields:
                    await self._tokens.end_other_sessions(claims.user_id, claims.session_id)
                    log.info("password_changed", user_id=claims.user_id)
                updated: User = user.model_copy(update=fields)
                return updated
        raise ProblemError(409, "The account changed meanwhile; try again.")

    async def delete(self, claims: AccessClaims) -> None:
        await self.get(claims)
        # Sessions first: every token dies even if what follows fails (retrying is safe).
        await self._tokens.end_all_sessions(claims.user_id)
        for _ in range(MAX_ATTEMPTS):
            user = await self._users.get(claims.user_id)
            if user is None:
                break
            event = Envelope.create(EventType.USER_DELETED, claims.user_id, UserDeletedPayload())
            # The tombstone keeps nothing personal; the email is free at once.
            erased = {
                "email": f"deleted-{user.id}@deleted.invalid",
                "password_hash": "",
                "display_name": None,
                "updated_at": utcnow(),
            }
            if await self._users.update(user, erased, event, delete=True):
                self._relay.notify()
                log.info("user_deleted", user_id=claims.user_id)
                break
        else:
            raise ProblemError(409, "The account changed meanwhile; try again.")
        await self._tokens.erase(claims.user_id)
