"""All database access for users' day settings: one small document per user."""

import contextlib
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from momentum_tracking.days.models import UserDays


class DaysRepository:
    async def get(self, user_id: str) -> UserDays | None:
        raw = await UserDays.get_pymongo_collection().find_one({"_id": user_id})
        return None if raw is None else UserDays.model_validate(raw)

    async def keep_newer(self, user_id: str, fields: dict[str, Any], event_at: datetime) -> None:
        """Store ``fields`` unless what is stored came from an event as new or newer."""
        collection = UserDays.get_pymongo_collection()
        event_ms = round(event_at.timestamp() * 1000)
        state = {**fields, "event_ms": event_ms}
        result = await collection.update_one(
            {"_id": user_id, "event_ms": {"$lt": event_ms}}, {"$set": state}
        )
        if result.matched_count:
            return
        # None to update: none yet, or one from an event as new or newer, which stays.
        with contextlib.suppress(DuplicateKeyError):
            await collection.insert_one({"_id": user_id, **state})

    async def forget(self, user_id: str) -> None:
        await UserDays.get_pymongo_collection().delete_one({"_id": user_id})
