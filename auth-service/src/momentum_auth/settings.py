"""auth-service settings: ``MOMENTUM_AUTH_…`` plus the shared, unprefixed ones from libs."""

from pathlib import Path

from momentum_libs.settings import OutboxRelaySettings, StreamConsumerSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict


class AuthSettings(OutboxRelaySettings, StreamConsumerSettings):
    model_config = SettingsConfigDict(
        env_prefix="MOMENTUM_AUTH_", extra="ignore", populate_by_name=True
    )

    mongodb_db: str = Field("momentum_auth", description="MongoDB database of auth-service")
    consumer_group: str = Field(
        "auth", description="Consumer group reading imported settings (user.settings_imported)"
    )
    consumer_name_prefix: str = Field(
        "auth", description="Prefix of this process's unique consumer name"
    )

    access_token_ttl_seconds: int = Field(
        900, ge=60, le=3600, description="Lifetime of an access token (EdDSA JWT)"
    )
    refresh_token_ttl_seconds: int = Field(
        30 * 24 * 3600,
        ge=3600,
        description="Lifetime of a refresh token; each refresh issues a new one",
    )

    refresh_reuse_grace_seconds: int = Field(
        20,
        ge=0,
        le=300,
        description="A rotated refresh token presented again within this many seconds "
        "answers the same new pair (a client that lost the response); later it is theft",
    )

    signing_key_file: Path | None = Field(
        None,
        description="PEM file of the Ed25519 signing key; required in production "
        "(or ..._SIGNING_KEY_PEM). Unset in development: a key is generated under "
        "MOMENTUM_DATA_DIR/keys",
    )
    signing_key_pem: SecretStr | None = Field(
        None, description="The Ed25519 signing key as PEM text (wins over the file)"
    )
    signing_key_id: str | None = Field(
        None, description="The `kid` of the signing key; default: its RFC 7638 thumbprint"
    )
    retired_public_keys_file: Path | None = Field(
        None,
        description="PEM file of the public keys of retired signing keys (any number): "
        "still in the JWKS and accepted, so a key rotation ends no access token early",
    )

    login_failure_window_seconds: int = Field(
        900, ge=1, description="Window (moving) in which failed logins are counted"
    )
    login_max_failures_per_email: int = Field(
        10, ge=1, description="Failed logins for one email in the window before it is locked"
    )
    login_max_failures_per_address: int = Field(
        100,
        ge=1,
        description="Failed logins from one client address in the window before it is locked",
    )
    trust_forwarded_for: bool = Field(
        True,
        description="Take the client address from X-Forwarded-For's first entry (the "
        "gateway sets it); else the peer address",
    )
    redis_key_prefix: str = Field(
        "momentum:auth:", description="Prefix of auth-service's Redis keys (login throttling)"
    )

    argon2_time_cost: int = Field(3, ge=1, description="argon2id passes")
    argon2_memory_cost_kib: int = Field(65536, ge=8192, description="argon2id memory, KiB")
    argon2_parallelism: int = Field(4, ge=1, description="argon2id lanes")
    password_hash_concurrency: int = Field(
        1,
        ge=1,
        description=(
            "argon2id hashes computed at the same time; more wait their turn, so a flood of "
            "logins cannot take the CPU every other request needs"
        ),
    )

    @model_validator(mode="after")
    def _keys_configured_in_production(self) -> "AuthSettings":
        if self.is_production and self.signing_key_file is None and self.signing_key_pem is None:
            raise ValueError(
                "production needs a signing key: set MOMENTUM_AUTH_SIGNING_KEY_FILE "
                "or MOMENTUM_AUTH_SIGNING_KEY_PEM"
            )
        return self
