"""auth-service settings: ``MOMENTUM_AUTH_…`` plus the shared, unprefixed ones from libs."""

from pathlib import Path

from momentum_libs.settings import ServiceSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="MOMENTUM_AUTH_", extra="ignore", populate_by_name=True
    )

    mongodb_db: str = "momentum_auth"

    # Access tokens (EdDSA JWTs) and refresh tokens (opaque, rotated).
    access_token_ttl_seconds: int = Field(900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=3600)

    # The Ed25519 signing key, as a PEM file or the PEM itself (e.g. from a secret).
    # In development, when neither is set, a key pair is generated under data_dir/keys.
    signing_key_file: Path | None = None
    signing_key_pem: SecretStr | None = None
    # The key id (`kid`); by default the RFC 7638 thumbprint of the public key.
    signing_key_id: str | None = None

    # Login throttling: failed attempts in a moving window.
    login_failure_window_seconds: int = Field(900, ge=1)
    login_max_failures_per_email: int = Field(10, ge=1)
    login_max_failures_per_address: int = Field(100, ge=1)
    # The gateway sets X-Forwarded-For (stripping what clients send); trust its first entry.
    trust_forwarded_for: bool = True
    # Prefix of the Redis keys this service owns (login throttling).
    redis_key_prefix: str = "momentum:auth:"

    # argon2id cost (pwdlib / argon2-cffi defaults: RFC 9106's low-memory profile).
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_cost_kib: int = Field(65536, ge=8192)
    argon2_parallelism: int = Field(4, ge=1)

    # How often the outbox relay looks for unpublished events (it is also woken on writes).
    outbox_sweep_interval_seconds: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _keys_configured_in_production(self) -> "AuthSettings":
        if self.is_production and self.signing_key_file is None and self.signing_key_pem is None:
            raise ValueError(
                "production needs a signing key: set MOMENTUM_AUTH_SIGNING_KEY_FILE "
                "or MOMENTUM_AUTH_SIGNING_KEY_PEM"
            )
        return self
