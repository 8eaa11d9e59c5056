"""All database access for users: the reads here, every write through the outbox base."""

from bson import ObjectId
from momentum_libs.events import Envelope
from momentum_libs.outbox import Notify, OutboxRepository
from pymongo.errors import DuplicateKeyError

from momentum_auth.users.models import User


class EmailTakenError(Exception):
    pass


class UserRepository(OutboxRepository[User]):
    def __init__(self, notify: Notify) -> None:
        super().__init__(User, notify)

    async def insert(self, doc: User, event: Envelope, *, publish: bool = True) -> User:
        try:
            return await super().insert(doc, event, publish=publish)
        except DuplicateKeyError as exc:
            raise EmailTakenError from exc

    async def get(self, user_id: ObjectId) -> User | None:
        return await User.find_one({"_id": user_id, "deleted": False})

    async def get_by_email(self, email: str) -> User | None:
        return await User.find_one({"email": email, "deleted": False})
