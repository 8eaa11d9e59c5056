"""All database access for daily logs and their idempotency keys."""

from datetime import datetime
from typing import Any

from bson import ObjectId
from momentum_libs.events import Envelope
from momentum_libs.outbox import OutboxRepository
from pymongo.errors import DuplicateKeyError

from momentum_tracking.common import keyset_after
from momentum_tracking.logs.models import DailyLog, IdempotencyRecord


async def insert(log: DailyLog, event: Envelope) -> None:
    """Insert; raises DuplicateKeyError when a log with this id exists already."""
    await OutboxRepository(DailyLog).insert(log, event)


async def get(user_id: str, log_id: ObjectId) -> DailyLog | None:
    return await DailyLog.find_one({"_id": log_id, "user_id": user_id, "deleted": False})


async def list_page(
    user_id: str,
    goal_id: str | None,
    date_from: str | None,
    date_to: str | None,
    after: tuple[str, ObjectId] | None,
    limit: int,
) -> list[DailyLog]:
    query: dict[str, Any] = {"user_id": user_id, "deleted": False}
    if goal_id is not None:
        query["goal_id"] = goal_id
    dates: dict[str, str] = {}
    if date_from is not None:
        dates["$gte"] = date_from
    if date_to is not None:
        dates["$lte"] = date_to
    if dates:
        query["date"] = dates
    if after is not None:
        query.update(keyset_after("date", after[0], after[1]))
    return await DailyLog.find(query).sort("-date", "-_id").limit(limit).to_list()


async def some_of_user(user_id: str, goal_id: str | None, limit: int) -> list[DailyLog]:
    query: dict[str, Any] = {"user_id": user_id, "deleted": False}
    if goal_id is not None:
        query["goal_id"] = goal_id
    return await DailyLog.find(query).limit(limit).to_list()


# -- Idempotency keys -------------------------------------------------------------------


async def claim_key(record: IdempotencyRecord) -> bool:
    """Insert the record; False when the key is taken already."""
    try:
        await IdempotencyRecord.get_pymongo_collection().insert_one(
            record.model_dump(by_alias=True)
        )
    except DuplicateKeyError:
        return False
    return True


async def get_key(record_id: str) -> IdempotencyRecord | None:
    raw = await IdempotencyRecord.get_pymongo_collection().find_one({"_id": record_id})
    return None if raw is None else IdempotencyRecord.model_validate(raw)


async def drop_expired_key(record: IdempotencyRecord) -> None:
    """Remove an expired record (unless it was replaced meanwhile)."""
    await IdempotencyRecord.get_pymongo_collection().delete_one(
        {"_id": record.id, "expires_at": record.expires_at}
    )


async def take_over_key(record: IdempotencyRecord, lease_until: datetime) -> bool:
    """Renew an abandoned claim's lease; False when someone else renewed or finished it."""
    result = await IdempotencyRecord.get_pymongo_collection().update_one(
        {"_id": record.id, "state": "pending", "lease_until": record.lease_until},
        {"$set": {"lease_until": lease_until}},
    )
    return result.matched_count == 1


async def complete_key(record_id: str, response: dict[str, Any]) -> None:
    await IdempotencyRecord.get_pymongo_collection().update_one(
        {"_id": record_id}, {"$set": {"state": "done", "response": response}}
    )


async def release_key(record_id: str, request_hash: str) -> None:
    """Forget a claim whose request failed without storing anything (a retry may run it)."""
    await IdempotencyRecord.get_pymongo_collection().delete_one(
        {"_id": record_id, "request_hash": request_hash, "state": "pending"}
    )


async def delete_keys_of_user(user_id: str) -> int:
    result = await IdempotencyRecord.get_pymongo_collection().delete_many({"user_id": user_id})
    return result.deleted_count
