"""Users: registration, profile changes, password change, deletion — and their events."""

from datetime import date, datetime
from typing import Any

import structlog
from beanie import PydanticObjectId
from bson import ObjectId
from momentum_libs.clock import Clock, utcnow
from momentum_libs.deps import unauthorized
from momentum_libs.events import (
    Envelope,
    EventType,
    PastDaySettings,
    SettingsImportedPayload,
    UserDeletedPayload,
    UserPayload,
)
from momentum_libs.ids import parse_object_id
from momentum_libs.localday import DayFloor, LocalDay, local_day, parse_day_start, today, zone
from momentum_libs.outbox import Change
from momentum_libs.problems import ProblemError
from momentum_libs.timestamps import to_milliseconds
from momentum_libs.tokens import AccessClaims
from pydantic import ValidationError

from momentum_auth.passwords import Passwords
from momentum_auth.tokens.service import TokenService
from momentum_auth.users.models import User
from momentum_auth.users.repository import EmailTakenError, UserRepository
from momentum_auth.users.schemas import UserCreate, UserUpdate

log = structlog.get_logger(__name__)


def _account_gone() -> ProblemError:
    return unauthorized("The account of this token no longer exists.")


def _account_id(claims: AccessClaims) -> ObjectId:
    account_id = parse_object_id(claims.user_id)
    if account_id is None:
        raise _account_gone()
    return account_id


DAY_SETTINGS = ("timezone", "rest_weekdays", "day_start", "daily_goal_minutes")
"""What decides a user's days: a change applies from their local today on."""


def user_today(user: User, now: datetime) -> LocalDay:
    """The user's local day at ``now``: never before the day of their last settings change."""
    floor = None
    if user.settings_from is not None and user.settings_from_at is not None:
        floor = DayFloor(date.fromisoformat(user.settings_from), user.settings_from_at)
    return today(now, zone(user.timezone), parse_day_start(user.day_start), floor)


def user_event(
    type_: EventType, user: User, restored: list[PastDaySettings] | None = None
) -> Envelope:
    """``user.registered``/``user.updated``: the user's whole day state, and since when
    (``restored``: an import's settings of the days before the account)."""
    payload = UserPayload(
        timezone=user.timezone,
        day_start=user.day_start,
        rest_weekdays=user.rest_weekdays,
        daily_goal_minutes=user.daily_goal_minutes,
        effective_date=date.fromisoformat(user.settings_from) if user.settings_from else None,
        effective_from=user.settings_from_at,
        changed_at=user.settings_changed_at,
        restored=restored,
    )
    return Envelope.create(type_, str(user.id), payload)


def first_day(user: User) -> date:
    """The local day the account was registered (for an account from before it was kept,
    the day of ``created_at`` by its settings now)."""
    if user.first_day is not None:
        return date.fromisoformat(user.first_day)
    return local_day(user.created_at, zone(user.timezone), parse_day_start(user.day_start)).date


def _imported_change(
    user: User, data: UserUpdate, restored: list[PastDaySettings], now: datetime
) -> Change | None:
    """An import's settings as a profile change (from today on), with the settings of the
    days before the account riding on its ``user.updated``; None: nothing to change."""
    change = _profile_change(user, data, now)
    if change is None and not restored:
        return None
    fields = dict(change[0]) if change else {}
    event = user_event(EventType.USER_UPDATED, user.model_copy(update=fields), restored or None)
    return {**fields, "updated_at": utcnow()}, event


def _profile_change(user: User, data: UserUpdate, now: datetime) -> Change | None:
    """The profile fields ``data`` changes on ``user`` as read, and their event."""
    fields: dict[str, Any] = {}
    if "display_name" in data.model_fields_set and data.display_name != user.display_name:
        fields["display_name"] = data.display_name
    for name in DAY_SETTINGS:
        value = getattr(data, name)
        if value is not None and value != getattr(user, name):
            fields[name] = value
    if not fields:
        return None
    if fields.keys() & set(DAY_SETTINGS):
        # From the day the user is in now, by the settings they had until now.
        day = user_today(user, now)
        fields.update(
            settings_from=day.date.isoformat(),
            settings_from_at=day.starts_at,
            settings_changed_at=to_milliseconds(now),
        )
    return fields, user_event(EventType.USER_UPDATED, user.model_copy(update=fields))


def _erased(user: User) -> Change:
    """The tombstone keeps nothing personal; the email is free at once."""
    fields = {
        "email": f"deleted-{user.id}@deleted.invalid",
        "password_hash": "",
        "display_name": None,
        "updated_at": utcnow(),
    }
    return fields, Envelope.create(EventType.USER_DELETED, str(user.id), UserDeletedPayload())


class UserService:
    def __init__(
        self, users: UserRepository, tokens: TokenService, passwords: Passwords, clock: Clock
    ) -> None:
        self._users = users
        self._tokens = tokens
        self._passwords = passwords
        self._clock = clock

    async def register(self, data: UserCreate) -> User:
        now = utcnow()
        registered_at = to_milliseconds(self._clock.now())
        first = local_day(registered_at, zone(data.timezone))
        user = User(
            email=data.email,
            password_hash=await self._passwords.hash(data.password),
            display_name=data.display_name,
            timezone=data.timezone,
            settings_from=first.date.isoformat(),
            settings_from_at=first.starts_at,
            settings_changed_at=registered_at,
            first_day=first.date.isoformat(),
            created_at=now,
            updated_at=now,
        )
        # The id is known before the insert, so the event can name it in the same write.
        user.id = PydanticObjectId()
        event = user_event(EventType.USER_REGISTERED, user)
        try:
            await self._users.insert(user, event)
        except EmailTakenError as exc:
            raise ProblemError(
                409, "An account with this email already exists.", type_slug="email-taken"
            ) from exc
        log.info("user_registered", user_id=str(user.id))
        return user

    async def get(self, claims: AccessClaims) -> User:
        user = await self._users.get(_account_id(claims))
        if user is None:
            raise _account_gone()
        return user

    async def today(self, claims: AccessClaims) -> tuple[User, LocalDay]:
        user = await self.get(claims)
        return user, user_today(user, self._clock.now())

    async def update(self, claims: AccessClaims, data: UserUpdate, address: str) -> User:
        account_id = _account_id(claims)
        # A new password: confirmed against the hash as read, and hashed, once; confirmed
        # again only if a retry reads another hash (a concurrent change, a login's rehash).
        confirmed_hash: str | None = None
        new_hash: str | None = None

        async def load() -> User | None:
            nonlocal confirmed_hash, new_hash
            user = await self._users.get(account_id)
            if user is None or data.password is None or user.password_hash == confirmed_hash:
                return user
            assert data.current_password is not None  # the schema demands it
            if not await self._tokens.confirm_password(user, data.current_password, address):
                raise ProblemError(
                    400,
                    "The current password is wrong.",
                    type_slug="wrong-password",
                    title="Wrong password",
                )
            confirmed_hash = user.password_hash
            new_hash = new_hash or await self._passwords.hash(data.password)
            return user

        def build(user: User) -> Change | None:
            fields, event = _profile_change(user, data, self._clock.now()) or ({}, None)
            if new_hash is not None:
                fields = {**fields, "password_hash": new_hash}
            if not fields:
                return None
            return {**fields, "updated_at": utcnow()}, event

        updated = await self._users.change(load, build)
        if updated is None:
            raise _account_gone()
        if new_hash is not None:
            await self._tokens.end_other_sessions(claims.user_id, claims.session_id)
            log.info("password_changed", user_id=claims.user_id)
        return updated

    async def apply_imported(self, user_id: str, payload: SettingsImportedPayload) -> None:
        """An import's settings (user.settings_imported), through the path of a profile
        change: the current ones from the user's today, and of the history, the entries of
        days before the account's first day (its own days keep the settings they had)."""
        account_id = parse_object_id(user_id)
        try:
            data = UserUpdate.model_validate(payload.settings.model_dump())
        except ValidationError as exc:  # the event's schema is looser than a PATCH's
            log.warning("imported_settings_refused", user_id=user_id, error=str(exc))
            return
        if account_id is None:
            return

        def build(user: User) -> Change | None:
            before = first_day(user)
            restored = [p for p in payload.history if p.effective_date < before]
            return _imported_change(user, data, restored, self._clock.now())

        if await self._users.change_by_id(self._users.get, account_id, build) is not None:
            log.info("imported_settings_applied", user_id=user_id)

    async def delete(self, claims: AccessClaims) -> None:
        user = await self.get(claims)
        # Sessions first: every token dies even if what follows fails (retrying is safe).
        await self._tokens.end_all_sessions(claims.user_id)
        # None: a concurrent deletion tombstoned it first; the sessions are erased all the same.
        if await self._users.change_by_id(
            self._users.get, _account_id(claims), _erased, delete=True, first=user
        ):
            log.info("user_deleted", user_id=claims.user_id)
        await self._tokens.erase(claims.user_id)
