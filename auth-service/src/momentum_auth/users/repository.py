"""All database access for users."""

from collections.abc import Mapping
from typing import Any

from beanie import PydanticObjectId
from bson.errors import InvalidId
from momentum_libs.events import Envelope
from momentum_libs.outbox import guard, new_with_event, update_with_event
from pymongo.errors import DuplicateKeyError

from momentum_auth.users.models import User


class EmailTakenError(Exception):
    pass


def _object_id(user_id: str) -> PydanticObjectId | None:
    try:
        return PydanticObjectId(user_id)
    except (InvalidId, TypeError):
        return None


class UserRepository:
    async def insert(self, user: User, event: Envelope) -> User:
        new_with_event(user, event)
        try:
            await user.insert()
        except DuplicateKeyError as exc:
            raise EmailTakenError from exc
        return user

    async def get(self, user_id: str) -> User | None:
        oid = _object_id(user_id)
        if oid is None:
            return None
        return await User.find_one({"_id": oid, "deleted": False})

    async def get_by_email(self, email: str) -> User | None:
        return await User.find_one({"email": email, "deleted": False})

    async def update(
        self,
        user: User,
        set_fields: Mapping[str, Any],
        event: Envelope | None = None,
        *,
        delete: bool = False,
    ) -> bool:
        """Apply a change to ``user`` as read; False if someone changed it first (re-read)."""
        if event is not None:
            update = update_with_event(user, set_fields, event, delete=delete)
        else:
            update = {"$set": dict(set_fields), "$inc": {"version": 1}}
        result = await User.get_pymongo_collection().update_one(guard(user), update)
        return result.matched_count == 1
