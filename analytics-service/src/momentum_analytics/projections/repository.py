"""All database access of the projections (the consumer's writes and the reads' lookups)."""

import asyncio
from collections.abc import Iterable
from typing import Any

from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from momentum_analytics.projections.models import (
    MODELS,
    TOMBSTONES_KEPT,
    MonthDays,
    TargetFact,
    UserProjection,
    empty_month,
    month_doc_id,
    target_week_key,
)

Doc = dict[str, Any]
DUPLICATE_KEY = 11000


class ProjectionRepository:
    def __init__(self, db: AsyncDatabase[Doc], tombstones_kept: int = TOMBSTONES_KEPT) -> None:
        self.db = db
        self.tombstones_kept = tombstones_kept
        """Deleted log entries each month written keeps (tests lower it to reach the bound)."""
        self.users: AsyncCollection[Doc] = db[UserProjection.COLLECTION]
        self.months: AsyncCollection[Doc] = db[MonthDays.COLLECTION]
        self.targets: AsyncCollection[Doc] = db[TargetFact.COLLECTION]

    async def ensure_indexes(self) -> None:
        for model in MODELS:
            if model.INDEXES:
                await self.db[model.COLLECTION].create_indexes(model.INDEXES)

    # -- users ---------------------------------------------------------------------
    async def get_user(self, user_id: str) -> UserProjection | None:
        doc = await self.users.find_one({"_id": user_id})
        return None if doc is None else UserProjection.model_validate(doc)

    async def commit_user(self, user: UserProjection, expected_version: int) -> bool:
        """Write the user's projection if nobody else did since ``expected_version``."""
        doc = user.to_mongo()
        doc["version"] = expected_version + 1
        if expected_version == 0:
            try:
                await self.users.insert_one(doc)
            except DuplicateKeyError:
                return False
            return True
        result = await self.users.replace_one({"_id": user.id, "version": expected_version}, doc)
        return result.matched_count == 1

    async def wipe_user_data(self, user_id: str) -> None:
        """Everything of a user but the tombstone in ``analytics_users``."""
        await asyncio.gather(
            self.months.delete_many({"user_id": user_id}),
            self.targets.delete_many({"user_id": user_id}),
        )

    # -- month documents --------------------------------------------------------------
    async def get_months(self, user_id: str, months: Iterable[str]) -> dict[str, MonthDays]:
        """These months of the user, by ``_id``; an empty (version 0) one where none is stored."""
        wanted = sorted(set(months))
        docs = await asyncio.gather(
            *(self.months.find_one({"_id": month_doc_id(user_id, m)}) for m in wanted)
        )
        return {
            m: empty_month(user_id, m) if d is None else MonthDays.model_validate(d)
            for m, d in zip(wanted, docs, strict=True)
        }

    async def months_of_user(self, user_id: str) -> dict[str, MonthDays]:
        cursor = self.months.find({"user_id": user_id}, batch_size=1_000)
        found = [MonthDays.model_validate(doc) async for doc in cursor]
        return {month.month: month for month in found}

    async def put_months(self, months: Iterable[MonthDays]) -> bool:
        """Write each month over the version it was read at; False if any lost to another writer.

        The months written are bumped to their new version in place, and every month
        written keeps only its newest deleted entries (MonthDays.drop_old_tombstones)."""
        ops: list[Any] = []
        docs = list(months)
        for month in docs:
            month.drop_old_tombstones(self.tombstones_kept)
            doc = month.to_mongo()
            doc["version"] = month.version + 1
            if month.version == 0:
                ops.append(InsertOne(doc))
            else:
                ops.append(ReplaceOne({"_id": month.id, "version": month.version}, doc))
        if not ops:
            return True
        try:
            result = await self.months.bulk_write(ops, ordered=False)
            written = result.matched_count + result.inserted_count
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
            written = int(exc.details.get("nMatched", 0)) + int(exc.details.get("nInserted", 0))
        if written != len(ops):
            return False
        for month in docs:
            month.version += 1
        return True

    # -- targets -----------------------------------------------------------------------
    async def put_target(self, fact: TargetFact) -> bool:
        """Store the target unless a newer version of it is stored; False when stale."""
        doc = fact.to_mongo()
        doc.pop("_id")
        try:
            await self.targets.update_one(
                {"_id": fact.id, "version": {"$lt": fact.version}}, {"$set": doc}, upsert=True
            )
        except DuplicateKeyError:
            return False
        return True

    async def write_targets(self, facts: list[TargetFact]) -> None:
        ops: list[Any] = []
        for fact in facts:
            doc = fact.to_mongo()
            doc.pop("_id")
            ops.append(
                UpdateOne(
                    {"_id": fact.id, "version": {"$lt": fact.version}}, {"$set": doc}, upsert=True
                )
            )
        if not ops:
            return
        try:
            await self.targets.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def targets_for(self, user_id: str, goal_id: str, week_start: str) -> list[TargetFact]:
        cursor = self.targets.find({"week_key": target_week_key(user_id, goal_id, week_start)})
        return [TargetFact.model_validate(doc) async for doc in cursor]

    async def targets_of_user(self, user_id: str) -> list[TargetFact]:
        cursor = self.targets.find({"user_id": user_id})
        return [TargetFact.model_validate(doc) async for doc in cursor]

    async def mark_targets_deleted(self, facts: list[TargetFact]) -> None:
        """Targets gone from tracking: deleted at the version we hold (newer ones win)."""
        ops: list[Any] = [
            UpdateOne({"_id": t.id, "version": t.version}, {"$set": {"deleted": True}})
            for t in facts
        ]
        if ops:
            await self.targets.bulk_write(ops, ordered=False)

    async def live_user_ids(self) -> set[str]:
        cursor = self.users.find({}, {"_id": 1, "deleted": 1})
        return {str(doc["_id"]) async for doc in cursor if not doc.get("deleted")}
