"""All database access for export jobs."""

from typing import Any

from momentum_tracking.exports.models import Export


class ExportRepository:
    async def insert(self, export: Export) -> None:
        await export.insert()

    async def get(self, user_id: str, export_id: str) -> Export | None:
        return await Export.find_one({"_id": export_id, "user_id": user_id})

    async def set(self, export: Export, **fields: Any) -> bool:
        """Set ``fields`` on the job as long as it is still ``export``'s attempt; False once
        another attempt has taken it over (the caller's work is then no one's)."""
        result = await Export.get_pymongo_collection().update_one(
            _this_attempt(export), {"$set": fields}
        )
        return bool(result.matched_count)

    async def take_over(self, export: Export, now_ms: int, lease_until_ms: int) -> bool:
        """Claim ``export``, unfinished and with its lease lapsed at ``now_ms``, as the next
        attempt, leased until ``lease_until_ms``; False if it finished or another reader
        claimed it first."""
        result = await Export.get_pymongo_collection().update_one(
            {
                **_this_attempt(export),
                "status": {"$in": ["pending", "running"]},
                "lease_until_ms": {"$lt": now_ms},
            },
            {
                "$set": {"status": "pending", "percent": 0, "lease_until_ms": lease_until_ms},
                "$inc": {"attempt": 1},
            },
        )
        return bool(result.matched_count)

    async def erase_user(self, user_id: str) -> None:
        await Export.get_pymongo_collection().delete_many({"user_id": user_id})


def _this_attempt(export: Export) -> dict[str, Any]:
    return {"_id": export.id, "user_id": export.user_id, "attempt": export.attempt}
