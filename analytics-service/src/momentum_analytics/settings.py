"""analytics-service settings: the shared base plus what only this service reads."""

from momentum_libs.settings import StreamConsumerSettings, VerifyingServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class AnalyticsSettings(VerifyingServiceSettings, StreamConsumerSettings):
    model_config = SettingsConfigDict(
        env_prefix="MOMENTUM_ANALYTICS_", extra="ignore", populate_by_name=True
    )

    mongodb_db: str = Field("momentum_analytics", description="MongoDB database of this service")
    consumer_enabled: bool = Field(
        True, description="Run the event consumer inside this process (false: serve reads only)"
    )
    consumer_group: str = Field("analytics", description="Consumer group reading domain events")
    consumer_name_prefix: str = Field(
        "analytics", description="Prefix of this process's unique consumer name"
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
    def tracking_url(self) -> str:
        return self.tracking_mongodb_url or self.mongodb_url
