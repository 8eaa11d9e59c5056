from typing import Literal

from beanie import Document
from momentum_libs.timestamps import UtcDatetime
from pydantic import Field
from pymongo import IndexModel

ExportFormat = Literal["json", "csv"]
ExportStatus = Literal["pending", "running", "ready", "failed"]


class Export(Document):
    """One export job of one user and, once ready, its file (``content``).

    ``expires_at`` is set once, at insert (nx-27017 stores a ``$set`` datetime as a
    string, which a TTL index ignores); MongoDB drops the job and its file after it.
    Reads also refuse an expired one, as the TTL monitor runs only once a minute."""

    id: str = Field(alias="_id")  # type: ignore[assignment]
    user_id: str
    format: ExportFormat
    status: ExportStatus = "pending"
    percent: int = 0
    content: bytes | None = None
    created_at: UtcDatetime
    expires_at: UtcDatetime

    class Settings:
        name = "exports"
        indexes = [
            IndexModel([("user_id", 1)], name="user_id"),
            IndexModel([("expires_at", 1)], name="expires_at_ttl", expireAfterSeconds=0),
        ]
