"""analytics-service settings: the shared base plus what only this service reads."""

from momentum_libs.settings import VerifyingServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class AnalyticsSettings(VerifyingServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="MOMENTUM_ANALYTICS_", extra="ignore", populate_by_name=True
    )

    mongodb_db: str = Field("momentum_analytics", description="MongoDB database of this service")
    sessions_redis_url: str | None = Field(
        None,
        description="Redis holding revoked sessions (unset: REDIS_URL)",
    )
    consumer_enabled: bool = Field(
        True, description="Run the event consumer inside this process (false: serve reads only)"
    )
    consumer_group: str = Field("analytics", description="Consumer group reading domain events")
    consumer_name_prefix: str = Field(
        "analytics", description="Prefix of this process's unique consumer name"
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
        description="Dead-letter stream of this consumer (unset: <events stream>.dead.analytics)",
    )
    tracking_mongodb_url: str | None = Field(
        None,
        description="MongoDB holding tracking's database, read by the rebuild (unset: MONGODB_URL)",
    )
    tracking_mongodb_db: str = Field(
        "momentum_tracking", description="tracking's database, the rebuild's source of truth"
    )
    rebuild_concurrency: int = Field(
        4, ge=1, description="Rebuild: users recomputed at the same time"
    )

    @property
    def dead_letters(self) -> str:
        return self.dead_letter_stream or f"{self.events_stream}.dead.analytics"

    @property
    def tracking_url(self) -> str:
        return self.tracking_mongodb_url or self.mongodb_url
