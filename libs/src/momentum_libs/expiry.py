"""Documents that expire: TTL indexes on MongoDB, our own sweep on the embedded server.

MongoDB removes expired documents in the background: its TTL monitor wakes about every
60 s, and a read never waits for it. The embedded nx-27017 has no monitor. It purges a
collection's expired documents at the start of every find on that collection, with two
deletes that scan the whole collection. Measured on 50,000 documents: a ``find_one`` by
an indexed field took 0.56 ms without a TTL index and 22 ms with one. Every read of
``daily_logs``, ``goals``, ``sync_changes``, ``refresh_tokens`` … then grew with the
collection: the relay's sweep, each write's goal check, the rebuild's reads.

So on that server only, :func:`create_indexes` creates each TTL index without its
``expireAfterSeconds``, and :class:`Expiries` deletes what has expired once a minute, as
MongoDB's monitor would. On MongoDB the indexes are created as declared and nothing
sweeps. Either way, whatever must not be seen once expired is also checked at read time,
since neither MongoDB's monitor nor ours is immediate.
"""

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from beanie import Document
from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from momentum_libs.background import BackgroundTasks, stop_if_cancelling
from momentum_libs.clock import utcnow
from momentum_libs.sharding import EXPIRY_SWEEP

log = structlog.get_logger(__name__)

SWEEP_INTERVAL_S = 60.0
"""How often the embedded server's expired documents are deleted: MongoDB's monitor's
default period (``ttlMonitorSleepSecs``)."""

INDEX_OPTIONS_CONFLICT = 85
EMBEDDED_PROCESS = "nx_27017"
"""What nx-27017 answers as ``process`` in ``buildInfo`` (MongoDB's has no such field)."""

Doc = dict[str, Any]


@dataclass(frozen=True)
class Expiry:
    """A collection's documents expire ``after_s`` seconds past the date in ``field``."""

    collection: AsyncCollection[Doc]
    field: str
    after_s: int


async def is_embedded(db: AsyncDatabase[Doc]) -> bool:
    """Whether ``db`` is served by the embedded nx-27017 (tests and ``make up``)."""
    info = await db.client.admin.command("buildInfo")
    return bool(info.get("process") == EMBEDDED_PROCESS)


class Expiries:
    """Every TTL index of one process's database; on the embedded server, also the sweep
    that stands in for MongoDB's TTL monitor (:meth:`run`, a background loop)."""

    def __init__(self, embedded: bool) -> None:
        self.embedded = embedded
        self.swept: list[Expiry] = []

    def start_sweeping(self, background: BackgroundTasks) -> None:
        """Run :meth:`run` among the process's loops, when there is something to sweep."""
        if self.swept:
            background.start(self.run(), name="expiry-sweep")

    async def create(self, collection: AsyncCollection[Doc], index: IndexModel) -> None:
        """Create ``index`` (one with ``expireAfterSeconds``): as it is on MongoDB, where a
        changed lifetime changes the existing index (``collMod``) instead of failing; on
        the embedded server without the option, swept by us instead."""
        spec = index.document
        seconds = int(spec["expireAfterSeconds"])
        ((field, _direction),) = spec["key"].items()
        if self.embedded:
            await self._create_swept(collection, spec)
            self.swept.append(Expiry(collection, field, seconds))
            return
        try:
            await collection.create_indexes([index])
        except OperationFailure as exc:
            if exc.code != INDEX_OPTIONS_CONFLICT:
                raise
            await collection.database.command(
                "collMod",
                collection.name,
                index={"name": spec["name"], "expireAfterSeconds": seconds},
            )

    @staticmethod
    async def _create_swept(collection: AsyncCollection[Doc], spec: Doc) -> None:
        key = list(spec["key"].items())
        # Found by key, not name: nx-27017 names every index itself (idx_<collection>_<field>).
        for name, existing in (await collection.index_information()).items():
            if existing["key"] == key and "expireAfterSeconds" in existing:
                # Made by an earlier version on this data directory; creating the plain
                # index over it would keep it (nx-27017 keeps the options it has).
                await collection.drop_index(name)
        await collection.create_indexes([IndexModel(key, name=spec["name"])])

    async def sweep_once(self) -> int:
        """Delete every swept document past its expiry; returns how many."""
        now = utcnow()
        deleted = 0
        for expiry in self.swept:
            cutoff = now - timedelta(seconds=expiry.after_s)
            result = await expiry.collection.delete_many(
                {expiry.field: {"$lt": cutoff}}, comment=EXPIRY_SWEEP
            )
            deleted += result.deleted_count
        return deleted

    async def run(self, interval_s: float = SWEEP_INTERVAL_S) -> None:
        """Sweep every ``interval_s`` until cancelled; a failed sweep waits for the next."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                deleted = await self.sweep_once()
            except Exception as exc:
                stop_if_cancelling()
                log.warning("expiry_sweep_failed", error=str(exc))
                continue
            if deleted:
                log.info("expired_documents_deleted", count=deleted)


def split_ttl(indexes: Iterable[Any]) -> tuple[list[IndexModel], list[IndexModel]]:
    """A model's declared indexes (``IndexModel`` or Beanie's wrapper of one): (plain ones,
    TTL ones)."""
    plain: list[IndexModel] = []
    ttl: list[IndexModel] = []
    for declared in indexes:
        index: IndexModel = getattr(declared, "index", declared)
        (ttl if "expireAfterSeconds" in index.document else plain).append(index)
    return plain, ttl


async def create_indexes(models: Sequence[type[Document]], expiries: Expiries) -> None:
    """Every index the models declare, their TTL indexes through ``expiries``."""
    for model in models:
        collection = model.get_pymongo_collection()
        plain, ttl = split_ttl(model.get_settings().indexes or [])
        if plain:
            await collection.create_indexes(plain)
        for index in ttl:
            await expiries.create(collection, index)
