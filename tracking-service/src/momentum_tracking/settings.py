"""tracking-service settings: the shared base plus what only this service reads."""

from momentum_libs.settings import (
    OutboxRelaySettings,
    StreamConsumerSettings,
    VerifyingServiceSettings,
)
from pydantic import Field
from pydantic_settings import SettingsConfigDict

DAY_S = 24 * 60 * 60


class TrackingSettings(VerifyingServiceSettings, OutboxRelaySettings, StreamConsumerSettings):
    model_config = SettingsConfigDict(
        env_prefix="MOMENTUM_TRACKING_", extra="ignore", populate_by_name=True
    )

    mongodb_db: str = Field("momentum_tracking", description="MongoDB database of this service")
    idempotency_ttl_s: int = Field(
        DAY_S, ge=DAY_S, description="How long an Idempotency-Key is remembered (seconds, >= 1 day)"
    )
    idempotency_lease_s: int = Field(
        30,
        ge=1,
        description="After this many seconds an unfinished request's Idempotency-Key may be "
        "taken over by a retry (its log id is reused, so nothing is stored twice)",
    )
    tombstone_retention_days: int = Field(
        90,
        ge=1,
        description="How long a deleted goal, target or log is remembered (days): a PUT of "
        "its id is 410 meanwhile, and a /changes token older than this is expired (410)",
    )
    export_ttl_s: int = Field(
        DAY_S, ge=60, description="How long an export's file can be downloaded (seconds)"
    )
    import_max_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="Largest import file (and largest file a Loop zip may unpack); larger is 413",
    )
    consumer_group: str = Field("tracking", description="Consumer group reading user events")
    consumer_name_prefix: str = Field(
        "tracking", description="Prefix of this process's unique consumer name"
    )
