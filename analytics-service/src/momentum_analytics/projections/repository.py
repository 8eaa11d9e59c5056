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
)

Doc = dict[str, Any]
DUPLICATE_KEY = 11000


def newer_than_held(fact: TargetFact) -> dict[str, Any]:
    """The filter of a target's upsert: the stored one is older (or there is none)."""
    return {"_id": fact.id, "user_id": fact.user_id, "version": {"$lt": fact.version}}


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
        """These months of the user; an empty (version 0) one where none is stored.

        One query by (user_id, month ids): the shard key sends it to the user's shard
        alone, and nx-27017 serves ``_id $in`` from its primary key."""
        wanted = sorted(set(months))
        ids = [month_doc_id(user_id, m) for m in wanted]
        cursor = self.months.find({"user_id": user_id, "_id": {"$in": ids}})
        found = {doc["month"]: MonthDays.model_validate(doc) async for doc in cursor}
        return {m: found.get(m) or empty_month(user_id, m) for m in wanted}

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
                guard = {"_id": month.id, "user_id": month.user_id, "version": month.version}
                ops.append(ReplaceOne(guard, doc))
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
        """Store the target unless a newer version of it is stored; False when stale.

        The upsert's filter holds the whole shard key (user_id) by equality, as MongoDB 7
        requires of an upsert on a sharded collection."""
        doc = fact.to_mongo()
        doc.pop("_id")
        try:
            await self.targets.update_one(newer_than_held(fact), {"$set": doc}, upsert=True)
        except DuplicateKeyError:
            return False
        return True

    async def write_targets(self, facts: list[TargetFact]) -> None:
        ops: list[Any] = []
        for fact in facts:
            doc = fact.to_mongo()
            doc.pop("_id")
            ops.append(UpdateOne(newer_than_held(fact), {"$set": doc}, upsert=True))
        if not ops:
            return
        try:
            await self.targets.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def targets_for(self, user_id: str, goal_id: str, week_start: str) -> list[TargetFact]:
        cursor = self.targets.find(
            {"user_id": user_id, "goal_id": goal_id, "week_start": week_start}
        )
        return [TargetFact.model_validate(doc) async for doc in cursor]

    async def targets_of_user(self, user_id: str) -> list[TargetFact]:
        cursor = self.targets.find({"user_id": user_id})
        return [TargetFact.model_validate(doc) async for doc in cursor]

    async def mark_targets_deleted(self, facts: list[TargetFact]) -> None:
        """Targets gone from tracking: deleted at the version we hold (newer ones win)."""
        ops: list[Any] = [
            UpdateOne(
                {"_id": t.id, "user_id": t.user_id, "version": t.version},
                {"$set": {"deleted": True}},
            )
            for t in facts
        ]
        if ops:
            await self.targets.bulk_write(ops, ordered=False)

    async def live_user_ids_after(
        self, after: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        """Live users' ids after ``after``, in order, from at most ``limit`` projections;
        and, when more may follow, the last id read (what the page vouches for ends there)."""
        query = {} if after is None else {"_id": {"$gt": after}}
        cursor = self.users.find(query, {"_id": 1, "deleted": 1}).sort("_id", 1).limit(limit)
        docs = await cursor.to_list()
        last = str(docs[-1]["_id"]) if len(docs) == limit else None
        return [str(d["_id"]) for d in docs if not d.get("deleted")], last
