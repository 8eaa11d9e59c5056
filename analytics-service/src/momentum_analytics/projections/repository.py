"""All database access of the projections (the consumer's writes and the reads' lookups)."""

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from momentum_analytics.projections.models import (
    MODELS,
    DayTotal,
    LogFact,
    TargetFact,
    UserProjection,
    YearDays,
    year_doc_id,
)

Doc = dict[str, Any]
DUPLICATE_KEY = 11000
# Above this many dates, one query for all of a user's facts beats one query per date.
MANY_DATES = 16


class ProjectionRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.users: AsyncCollection[Doc] = db[UserProjection.COLLECTION]
        self.years: AsyncCollection[Doc] = db[YearDays.COLLECTION]
        self.facts: AsyncCollection[Doc] = db[LogFact.COLLECTION]
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
            self.years.delete_many({"user_id": user_id}),
            self.facts.delete_many({"user_id": user_id}),
            self.targets.delete_many({"user_id": user_id}),
        )

    # -- log facts -----------------------------------------------------------------
    async def get_fact(self, log_id: str) -> LogFact | None:
        doc = await self.facts.find_one({"_id": log_id})
        return None if doc is None else LogFact.model_validate(doc)

    async def put_fact(self, fact: LogFact, expected_version: int | None) -> bool:
        """Insert (``expected_version`` None) or replace the fact read at that version."""
        if expected_version is None:
            try:
                await self.facts.insert_one(fact.to_mongo())
            except DuplicateKeyError:
                return False
            return True
        result = await self.facts.replace_one(
            {"_id": fact.id, "version": expected_version}, fact.to_mongo()
        )
        return result.matched_count == 1

    async def facts_of_user(self, user_id: str) -> list[LogFact]:
        cursor = self.facts.find({"user_id": user_id}, batch_size=10_000)
        return [LogFact.model_validate(doc) async for doc in cursor]

    async def facts_on(self, user_id: str, dates: Iterable[str]) -> list[LogFact]:
        wanted = set(dates)
        if len(wanted) > MANY_DATES:
            return [f for f in await self.facts_of_user(user_id) if f.date in wanted]

        async def on(day: str) -> list[LogFact]:
            cursor = self.facts.find({"user_id": user_id, "date": day})
            return [LogFact.model_validate(doc) async for doc in cursor]

        found = await asyncio.gather(*(on(day) for day in sorted(wanted)))
        return [fact for facts in found for fact in facts]

    async def facts_of_goal(self, user_id: str, goal_id: str) -> list[LogFact]:
        cursor = self.facts.find({"user_id": user_id, "goal_id": goal_id})
        return [LogFact.model_validate(doc) async for doc in cursor]

    async def write_facts(self, facts: list[tuple[LogFact, int | None]]) -> int:
        """Bulk version-guarded writes: (fact, version it replaces or None to insert).

        Returns how many lost to a concurrent writer (the caller retries)."""
        if not facts:
            return 0
        ops: list[Any] = []
        for fact, expected in facts:
            if expected is None:
                ops.append(InsertOne(fact.to_mongo()))
            else:
                ops.append(ReplaceOne({"_id": fact.id, "version": expected}, fact.to_mongo()))
        try:
            result = await self.facts.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            matched = exc.details.get("nMatched", 0) + exc.details.get("nInserted", 0)
            return len(ops) - int(matched)
        return len(ops) - (result.matched_count + result.inserted_count)

    # -- year documents --------------------------------------------------------------
    async def get_years(self, user_id: str, years: Iterable[int]) -> dict[int, YearDays]:
        wanted = sorted(set(years))
        ids = [year_doc_id(user_id, y) for y in wanted]
        docs = await asyncio.gather(*(self.years.find_one({"_id": i}) for i in ids))
        return {
            y: YearDays.model_validate(d)
            if d is not None
            else YearDays(id=year_doc_id(user_id, y), user_id=user_id, year=y)
            for y, d in zip(wanted, docs, strict=True)
        }

    async def years_of_user(self, user_id: str) -> list[YearDays]:
        cursor = self.years.find({"user_id": user_id})
        return [YearDays.model_validate(doc) async for doc in cursor]

    async def set_days(
        self, user_id: str, year: int, changes: Mapping[str, DayTotal | None]
    ) -> None:
        """Set (or remove, for None) single days of a year: other days are left alone."""
        set_fields: Doc = {"user_id": user_id, "year": year}
        unset_fields: Doc = {}
        for day, total in changes.items():
            if total is None:
                unset_fields[f"days.{day}"] = ""
            else:
                set_fields[f"days.{day}"] = total.model_dump(mode="json")
        update: Doc = {"$set": set_fields}
        if unset_fields:
            update["$unset"] = unset_fields
        await self.years.update_one({"_id": year_doc_id(user_id, year)}, update, upsert=True)

    async def replace_years(self, user_id: str, years: Mapping[int, YearDays]) -> None:
        """The rebuild's write: these whole years, and no other year of the user."""
        ops: list[Any] = [
            ReplaceOne({"_id": doc.id}, doc.to_mongo(), upsert=True) for doc in years.values()
        ]
        if ops:
            await self.years.bulk_write(ops, ordered=False)
        keep = [year_doc_id(user_id, y) for y in years]
        await self.years.delete_many({"user_id": user_id, "_id": {"$nin": keep}})

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
            UpdateOne({"_id": t.id, "version": t.version}, {"$set": {"deleted": True}})
            for t in facts
        ]
        if ops:
            await self.targets.bulk_write(ops, ordered=False)

    async def live_user_ids(self) -> set[str]:
        cursor = self.users.find({}, {"_id": 1, "deleted": 1})
        return {str(doc["_id"]) async for doc in cursor if not doc.get("deleted")}
