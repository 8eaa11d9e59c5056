"""One MongoDB client per process, Beanie on PyMongo's async API (motor is end-of-life)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from beanie import Document, init_beanie
from pymongo import AsyncMongoClient

from momentum_libs.expiry import Expiries, create_indexes, is_embedded
from momentum_libs.metrics import MongoCommandTimer
from momentum_libs.sharding import ShardKeyAudit


def mongo_client(
    url: str,
    timeout_ms: int,
    audit_file: Path | None = None,
    *,
    socket_timeout_ms: int | None = None,
) -> AsyncMongoClient[dict[str, Any]]:
    """The client of a process. ``audit_file``: record there every filter on a sharded
    collection that lacks its shard key (:mod:`momentum_libs.sharding`; tests only).
    ``socket_timeout_ms``: the longest one operation may take on a reachable server (bulk
    tools raise it); finding and connecting to the server stay ``timeout_ms``."""
    listeners: list[Any] = [MongoCommandTimer()]
    if audit_file is not None:
        listeners.append(ShardKeyAudit(audit_file))
    # Every wait is bounded so an outage answers 503 fast instead of hanging a request.
    return AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=socket_timeout_ms or max(timeout_ms * 5, 10_000),
        tz_aware=True,
        uuidRepresentation="standard",
        # An acknowledged write is one a replica-set failover cannot roll back: a write
        # with its outbox event, a relay's clear and a projection's guarded write are
        # acknowledged only then (MongoDB 7's default too, stated here so no URL or
        # cluster default changes it).
        w="majority",
        event_listeners=listeners,
    )


async def init_documents(
    client: AsyncMongoClient[dict[str, Any]], database: str, models: Sequence[type[Document]]
) -> Expiries:
    """Beanie over ``models`` and every index they declare; the TTL ones are handled by
    the :class:`Expiries` returned (whose ``start_sweeping`` the lifespan calls)."""
    db = client[database]
    # Indexes are ours to create: the embedded server takes its TTL ones without the option.
    await init_beanie(database=db, document_models=list(models), skip_indexes=True)
    expiries = Expiries(embedded=await is_embedded(db))
    await create_indexes(models, expiries)
    return expiries
