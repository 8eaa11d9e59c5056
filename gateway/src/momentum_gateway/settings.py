"""The gateway's settings: ``MOMENTUM_GATEWAY_…`` plus the shared unprefixed ones."""

from typing import Annotated, Any, Literal

import orjson
from momentum_libs.settings import VerifyingServiceSettings
from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

DEFAULT_AUTH_URL = "http://127.0.0.1:8001"
DEFAULT_TRACKING_URL = "http://127.0.0.1:8002"
DEFAULT_ANALYTICS_URL = "http://127.0.0.1:8003"


class GatewaySettings(VerifyingServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="MOMENTUM_GATEWAY_", extra="ignore", populate_by_name=True
    )

    auth_url: str = Field(DEFAULT_AUTH_URL, description="Base URL of auth-service")
    tracking_url: str = Field(DEFAULT_TRACKING_URL, description="Base URL of tracking-service")
    analytics_url: str = Field(DEFAULT_ANALYTICS_URL, description="Base URL of analytics-service")

    connect_timeout_seconds: float = Field(
        2.0, gt=0, description="Upstream connect timeout; past it the client gets 504"
    )
    read_timeout_seconds: float = Field(
        15.0, gt=0, description="Upstream read timeout (per read); past it the client gets 504"
    )
    write_timeout_seconds: float = Field(
        15.0, gt=0, description="Upstream write timeout (per write)"
    )
    import_read_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="Upstream read timeout of POST /imports, which answers once the whole "
        "file is merged (a file of the largest size takes seconds, more on a loaded node)",
    )
    pool_timeout_seconds: float = Field(
        2.0, gt=0, description="Wait for a free upstream connection; past it the client gets 503"
    )
    max_connections: int = Field(
        16,
        ge=1,
        description="Upstream connections per service (one pool each); more wait for one",
    )
    max_keepalive_connections: int = Field(
        16, ge=0, description="Idle upstream connections kept open per service"
    )
    keepalive_expiry_seconds: float = Field(
        4.0,
        gt=0,
        description="Idle upstream connections are closed after this (below uvicorn's 5 s)",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=0, description="Largest request body accepted; larger is 413"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [],
        description="Browser origins allowed by CORS, comma-separated or a JSON list; "
        "empty: CORS closed",
    )
    openapi_cache_seconds: float = Field(
        60.0, ge=0, description="How long the merged /openapi.json is reused"
    )
    openapi_fetch_timeout_seconds: float = Field(
        2.0, gt=0, description="Timeout for fetching a service's own /openapi.json"
    )
    health_timeout_seconds: float = Field(
        1.0, gt=0, description="Timeout for each service's /health in GET /health"
    )
    client_max_in_flight: int = Field(
        8,
        ge=0,
        description="Requests one client (token subject, else address) may have in flight "
        "at this gateway process; below max_connections so one client cannot take a "
        "service's pool. 0: no limit",
    )
    client_max_queued: int = Field(
        8,
        ge=0,
        description="Requests of a client at its in-flight limit that wait for a slot; "
        "more are 429 at once",
    )
    client_queue_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest wait for an in-flight slot; past it the client gets 429"
    )
    rate_limit_requests: int = Field(
        1200,
        ge=0,
        description="Requests one client may send per rate-limit window (429 past it). 0: no limit",
    )
    rate_limit_window_seconds: int = Field(
        60, ge=1, description="Length of the rate-limit window (fixed, aligned to the clock)"
    )
    rate_limit_storage: Literal["memory", "redis"] = Field(
        "memory",
        description="Where windows are counted: memory (per gateway process) or redis "
        "(REDIS_URL, shared by every replica; one more round trip per request)",
    )
    redis_key_prefix: str = Field(
        "momentum:gateway:", description="Prefix of the gateway's own Redis keys (rate windows)"
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Bind address of the gateway's Prometheus /metrics listener "
        "(0.0.0.0 where Prometheus scrapes from another host)",
    )
    metrics_port: int = Field(
        9100,
        ge=0,
        le=65535,
        description="Port of that listener, never the public one (0: any free port)",
    )
    revoked_session_ttl_seconds: int = Field(
        1200,
        ge=960,
        description="Lifetime of a revoked-session key in Redis (>= 15 min access tokens + margin)",
    )

    @property
    def upstream_urls(self) -> dict[str, str]:
        """Service name → base URL."""
        return {
            "auth": self.auth_url,
            "tracking": self.tracking_url,
            "analytics": self.analytics_url,
        }

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return orjson.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("auth_url", "tracking_url", "analytics_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _upstreams_configured_in_production(self) -> "GatewaySettings":
        if self.is_production:
            defaults = {DEFAULT_AUTH_URL, DEFAULT_TRACKING_URL, DEFAULT_ANALYTICS_URL}
            unset = [
                name
                for name in ("auth_url", "tracking_url", "analytics_url")
                if getattr(self, name) in defaults
            ]
            if unset:
                names = ", ".join(f"MOMENTUM_GATEWAY_{n.upper()}" for n in unset)
                raise ValueError(f"{names} must be configured in production")
        return self
