"""Signing keys (dev generation, production refusal, JWKS), /health/db, the OpenAPI document."""

import stat
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from momentum_auth.keys.service import DEV_KEY_FILENAME, KeyConfigurationError, load_signing_key
from momentum_auth.settings import AuthSettings
from momentum_libs.stores import free_port
from pydantic import ValidationError

from .conftest import SettingsFactory, ed25519_pem, new_account, running


async def test_development_creates_a_private_key_once_mode_0600(
    make_settings: SettingsFactory,
) -> None:
    settings: AuthSettings = make_settings()
    path = settings.data_dir / "keys" / DEV_KEY_FILENAME
    assert not path.exists()
    async with running(settings) as (_, client):
        first = (await client.get("/.well-known/jwks.json")).json()
        acc = await new_account(client)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A restart reuses the key: the same kid, and tokens minted before still verify.
    async with running(settings) as (_, client):
        assert (await client.get("/.well-known/jwks.json")).json() == first
        assert (await client.get("/auth/me", headers=acc.headers)).status_code == 200
    [key] = first["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert key["use"] == "sig" and key["kid"]
    assert "d" not in key
    assert jwt.get_unverified_header(acc.access_token)["kid"] == key["kid"]


def test_production_refuses_to_start_without_keys(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValidationError, match="SIGNING_KEY"):
        make_settings(environment="production")
    settings = make_settings(environment="production", signing_key_pem=ed25519_pem())
    assert load_signing_key(settings).kid


def test_a_configured_key_file_is_used_and_a_bad_one_refused(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    good = tmp_path / "signing.pem"
    good.write_text(ed25519_pem())
    key = load_signing_key(make_settings(signing_key_file=good))
    assert key.kid == load_signing_key(make_settings(signing_key_file=good)).kid
    assert not (tmp_path / "data" / "keys").exists()  # nothing generated
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(KeyConfigurationError):
        load_signing_key(make_settings(signing_key_file=bad))
    with pytest.raises(KeyConfigurationError):
        load_signing_key(make_settings(signing_key_file=tmp_path / "missing.pem"))


async def test_health_db_checks_both_stores(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    response = await client.get("/health/db")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mongodb": "ok", "redis": "ok"}


async def test_health_db_names_a_dead_redis(make_settings: SettingsFactory) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with running(make_settings(redis_url=dead, store_timeout_ms=2000)) as (_, client):
        response = await client.get("/health/db")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "mongodb": "ok", "redis": "down"}


async def test_openapi_documents_routes_and_problems(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, method in (
        ("/auth/register", "post"),
        ("/auth/login", "post"),
        ("/auth/refresh", "post"),
        ("/auth/logout", "post"),
        ("/auth/me", "get"),
        ("/users/me", "get"),
        ("/users/me", "patch"),
        ("/users/me", "delete"),
        ("/health/db", "get"),
    ):
        assert method in paths[path], (path, method)
    assert (
        "application/problem+json" in paths["/auth/register"]["post"]["responses"]["409"]["content"]
    )
    assert "429" in paths["/auth/login"]["post"]["responses"]
    login_body = paths["/auth/login"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(login_body)
    assert "400" in paths["/users/me"]["patch"]["responses"]
    assert paths["/.well-known/jwks.json"]["get"]["tags"] == ["internal"]
    # No schema exposes a password hash.
    assert "password_hash" not in str(spec)


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


async def test_a_rotated_key_keeps_the_old_access_tokens_valid_while_it_is_listed(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    old, new, other = ed25519_pem(), ed25519_pem(), ed25519_pem()
    async with running(make_settings(signing_key_pem=old)) as (_, client):
        acc = await new_account(client)
        old_kid = jwt.get_unverified_header(acc.access_token)["kid"]
    retired = tmp_path / "retired.pem"
    retired.write_text(public_pem(other) + public_pem(old))

    async with running(make_settings(signing_key_pem=new, retired_public_keys_file=retired)) as (
        _,
        client,
    ):
        assert (await client.get("/auth/me", headers=acc.headers)).status_code == 200
        keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
        assert len(keys) == 3 and old_kid in {k["kid"] for k in keys[1:]}
        fresh = await new_account(client)
        assert jwt.get_unverified_header(fresh.access_token)["kid"] == keys[0]["kid"] != old_kid

    async with running(make_settings(signing_key_pem=new)) as (_, client):
        assert (await client.get("/auth/me", headers=acc.headers)).status_code == 401


def test_a_bad_retired_keys_file_is_refused(make_settings: SettingsFactory, tmp_path: Path) -> None:
    for content in ("", "not a key", ed25519_pem()):
        path = tmp_path / "retired.pem"
        path.write_text(content)
        with pytest.raises(KeyConfigurationError, match="RETIRED_PUBLIC_KEYS_FILE"):
            load_signing_key(make_settings(retired_public_keys_file=path))
