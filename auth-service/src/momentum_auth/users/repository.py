"""All database access for users."""

from collections.abc import Mapping
from typing import Any

from momentum_libs.events import Envelope
from momentum_libs.ids import parse_object_id
from momentum_libs.outbox import Notify, OutboxRepository
from pymongo.errors import DuplicateKeyError

from momentum_auth.users.models import User


class EmailTakenError(Exception):
    pass


class UserRepository(OutboxRepository[User]):
    def __init__(self, notify: Notify) -> None:
        super().__init__(User, notify)

    async def insert(self, doc: User, event: Envelope) -> User:
        try:
            return await super().insert(doc, event)
        except DuplicateKeyError as exc:
            raise EmailTakenError from exc

    async def get(self, user_id: str) -> User | None:
        oid = parse_object_id(user_id)
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
        return await self.write(user, set_fields, event, delete=delete) is not None
