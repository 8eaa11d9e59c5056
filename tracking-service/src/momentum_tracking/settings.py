"""tracking-service settings: the shared base plus what only this service reads."""

from momentum_libs.settings import VerifyingServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

DAY_S = 24 * 60 * 60


class TrackingSettings(VerifyingServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="MOMENTUM_TRACKING_", extra="ignore", populate_by_name=True
    )

    mongodb_db: str = Field("momentum_tracking", description="MongoDB database of this service")
    sessions_redis_url: str | None = Field(
        None,
        description="Redis holding revoked sessions when not REDIS_URL (unset: REDIS_URL)",
    )
    idempotency_ttl_s: int = Field(
        DAY_S, ge=DAY_S, description="How long an Idempotency-Key is remembered (seconds, >= 1 day)"
    )
    idempotency_lease_s: int = Field(
        30,
        ge=1,
        description="After this many seconds an unfinished request's Idempotency-Key may be "
        "taken over by a retry (its log id is reused, so nothing is stored twice)",
    )
    relay_sweep_interval_s: float = Field(
        1.0, gt=0, description="Outbox relay: seconds between sweeps when nothing notifies it"
    )
    relay_batch_size: int = Field(500, ge=1, description="Outbox relay: documents per pass")
    relay_max_backoff_s: float = Field(
        5.0, gt=0, description="Outbox relay: longest wait between retries while Redis is down"
    )
    events_maxlen: int = Field(
        1_000_000, ge=1000, description="Approximate cap (MAXLEN ~) of the event stream"
    )
    consumer_group: str = Field("tracking", description="Consumer group reading user events")
    consumer_name_prefix: str = Field(
        "tracking", description="Prefix of this process's unique consumer name"
    )
    consumer_batch_size: int = Field(100, ge=1, description="Events read per XREADGROUP")
    consumer_block_ms: int = Field(1000, ge=1, description="XREADGROUP BLOCK milliseconds")
    consumer_claim_idle_ms: int = Field(
        30_000, ge=1, description="Reclaim entries a dead consumer left pending this long (ms)"
    )
    consumer_max_deliveries: int = Field(
        5, ge=1, description="Deliveries before an event is moved to the dead-letter stream"
    )
    dead_letter_stream: str | None = Field(
        None,
        description="Dead-letter stream of this service's consumer "
        "(unset: <events stream>.dead.tracking)",
    )

    @property
    def dead_letters(self) -> str:
        return self.dead_letter_stream or f"{self.events_stream}.dead.tracking"
