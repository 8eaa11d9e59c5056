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
    Reads also refuse an expired one, as the TTL monitor runs only once a minute.

    ``attempt`` and ``lease_until_ms`` tell a job whose builder died (its process killed or
    restarted) from one being built: the builder renews its lease while it works, and a
    read of a pending or running job whose lease lapsed takes it over as the next attempt
    (:mod:`momentum_tracking.exports.service`). Every write of a builder names its attempt,
    so one that was taken over while it only stalled writes nothing. The lease is epoch
    milliseconds, not a datetime, for the reason ``expires_at`` is set only at insert."""

    id: str = Field(alias="_id")  # type: ignore[assignment]
    user_id: str
    format: ExportFormat
    status: ExportStatus = "pending"
    percent: int = 0
    content: bytes | None = None
    attempt: int = 1
    lease_until_ms: int = 0
    created_at: UtcDatetime
    expires_at: UtcDatetime

    class Settings:
        name = "exports"
        indexes = [
            IndexModel([("user_id", 1)], name="user_id"),
            IndexModel([("expires_at", 1)], name="expires_at_ttl", expireAfterSeconds=0),
        ]
