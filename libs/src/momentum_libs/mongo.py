"""One MongoDB client per process, Beanie on PyMongo's async API (motor is end-of-life)."""

from collections.abc import Sequence
from typing import Any

from beanie import Document, init_beanie
from pymongo import AsyncMongoClient

from momentum_libs.metrics import MongoCommandTimer


def mongo_client(
    url: str, timeout_ms: int, *, socket_timeout_ms: int | None = None
) -> AsyncMongoClient[dict[str, Any]]:
    """``socket_timeout_ms``: the longest one operation may take on a reachable server
    (bulk tools raise it); finding and connecting to the server stay ``timeout_ms``."""
    # Every wait is bounded so an outage answers 503 fast instead of hanging a request.
    return AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=socket_timeout_ms or max(timeout_ms * 5, 10_000),
        tz_aware=True,
        uuidRepresentation="standard",
        event_listeners=[MongoCommandTimer()],
    )


async def init_documents(
    client: AsyncMongoClient[dict[str, Any]], database: str, models: Sequence[type[Document]]
) -> None:
    await init_beanie(database=client[database], document_models=list(models))
