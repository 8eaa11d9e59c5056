"""All database access for export jobs."""

from typing import Any

from momentum_tracking.exports.models import Export


class ExportRepository:
    async def insert(self, export: Export) -> None:
        await export.insert()

    async def get(self, user_id: str, export_id: str) -> Export | None:
        return await Export.find_one({"_id": export_id, "user_id": user_id})

    async def set(self, export_id: str, **fields: Any) -> None:
        await Export.get_pymongo_collection().update_one({"_id": export_id}, {"$set": fields})

    async def erase_user(self, user_id: str) -> None:
        await Export.get_pymongo_collection().delete_many({"user_id": user_id})
