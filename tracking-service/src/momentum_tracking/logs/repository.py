"""All database access for daily logs and their idempotency keys."""

from datetime import datetime, timedelta
from typing import Any

from momentum_libs.outbox import Notify
from pymongo.errors import DuplicateKeyError

from momentum_tracking.common import dated_query
from momentum_tracking.ids import DocumentId
from momentum_tracking.logs.models import DailyLog, IdempotencyRecord
from momentum_tracking.owned import TOMBSTONE_RETENTION, OwnedRepository


class LogRepository(OwnedRepository[DailyLog]):
    def __init__(self, notify: Notify, retention: timedelta = TOMBSTONE_RETENTION) -> None:
        super().__init__(DailyLog, notify, "Daily log", retention)

    async def list_page(
        self,
        user_id: str,
        goal_id: str | None,
        date_from: str | None,
        date_to: str | None,
        after: tuple[str, DocumentId] | None,
        limit: int,
    ) -> list[DailyLog]:
        query = dated_query("date", user_id, goal_id, date_from, date_to, after)
        return await DailyLog.find(query).sort("-date", "-_id").limit(limit).to_list()


class IdempotencyRepository:
    """``Idempotency-Key`` records: claims written once, never outbox documents (no event)."""

    async def claim_key(self, record: IdempotencyRecord) -> bool:
        """Insert the record; False when the key is taken already."""
        try:
            await IdempotencyRecord.get_pymongo_collection().insert_one(
                record.model_dump(by_alias=True)
            )
        except DuplicateKeyError:
            return False
        return True

    async def get_key(self, user_id: str, record_id: str) -> IdempotencyRecord | None:
        raw = await IdempotencyRecord.get_pymongo_collection().find_one(
            {"_id": record_id, "user_id": user_id}
        )
        return None if raw is None else IdempotencyRecord.model_validate(raw)

    async def drop_expired_key(self, record: IdempotencyRecord) -> None:
        """Remove an expired record (unless it was replaced meanwhile)."""
        await IdempotencyRecord.get_pymongo_collection().delete_one(
            {"_id": record.id, "user_id": record.user_id, "expires_at": record.expires_at}
        )

    async def take_over_key(self, record: IdempotencyRecord, lease_until: datetime) -> bool:
        """Renew an abandoned claim's lease; False when someone else renewed or finished it."""
        result = await IdempotencyRecord.get_pymongo_collection().update_one(
            {
                "_id": record.id,
                "user_id": record.user_id,
                "state": "pending",
                "lease_until": record.lease_until,
            },
            {"$set": {"lease_until": lease_until}},
        )
        return result.matched_count == 1

    async def complete_key(self, user_id: str, record_id: str, response: dict[str, Any]) -> None:
        await IdempotencyRecord.get_pymongo_collection().update_one(
            {"_id": record_id, "user_id": user_id},
            {"$set": {"state": "done", "response": response}},
        )

    async def release_key(self, user_id: str, record_id: str, request_hash: str) -> None:
        """Forget a claim whose request failed without storing anything (a retry may run it)."""
        await IdempotencyRecord.get_pymongo_collection().delete_one(
            {"_id": record_id, "user_id": user_id, "request_hash": request_hash, "state": "pending"}
        )

    async def delete_keys_of_user(self, user_id: str) -> int:
        result = await IdempotencyRecord.get_pymongo_collection().delete_many({"user_id": user_id})
        return result.deleted_count
