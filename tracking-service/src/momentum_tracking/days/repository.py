"""All database access for users' day settings: one small document per user."""

from typing import Any

from pymongo.errors import DuplicateKeyError

from momentum_tracking.days.models import UserDays


class DaysRepository:
    async def get(self, user_id: str) -> UserDays | None:
        raw = await UserDays.get_pymongo_collection().find_one({"_id": user_id})
        return None if raw is None else UserDays.model_validate(raw)

    async def save(self, days: UserDays, held: UserDays | None) -> bool:
        """Write ``days`` over ``held`` (as read; None: there was none), guarded by its
        version; False when another write came first."""
        collection = UserDays.get_pymongo_collection()
        state: dict[str, Any] = days.model_dump(mode="json", by_alias=True, exclude={"id"})
        state["settings_from_at"] = days.settings_from_at  # a datetime, as before
        state["version"] = 1 if held is None else held.version + 1
        if held is None:
            try:
                await collection.insert_one({"_id": days.id, **state})
            except DuplicateKeyError:
                return False
            return True
        # A document from before ``version`` has none: guard on its absence.
        version = {"$exists": False} if held.version == 0 else held.version
        result = await collection.update_one({"_id": days.id, "version": version}, {"$set": state})
        return result.matched_count == 1

    async def forget(self, user_id: str) -> None:
        await UserDays.get_pymongo_collection().delete_one({"_id": user_id})
