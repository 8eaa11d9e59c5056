"""auth-service in-process against the real stores (plugin fixtures), one namespace per test."""

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from momentum_auth.main import create_app
from momentum_auth.settings import AuthSettings
from pymongo import MongoClient
from redis import Redis

PASSWORD = "correct horse battery"

SettingsFactory = Callable[..., AuthSettings]


@pytest.fixture
def make_settings(
    mongodb_url: str, redis_url: str, namespace: str, tmp_path: Path
) -> Iterator[SettingsFactory]:
    def make(**overrides: Any) -> AuthSettings:
        values: dict[str, Any] = {
            "mongodb_url": mongodb_url,
            "redis_url": redis_url,
            "mongodb_db": f"{namespace}momentum_auth",
            "events_stream": f"{namespace}momentum.events",
            "redis_key_prefix": f"{namespace}momentum:auth:",
            "data_dir": tmp_path / "data",
            "log_json": False,
            "log_level": "WARNING",
            # Cheaper argon2id: still the real hasher, but tests log in many times.
            "argon2_time_cost": 1,
            "argon2_memory_cost_kib": 8192,
            "argon2_parallelism": 1,
            "relay_sweep_interval_s": 0.2,
        }
        values.update(overrides)
        return AuthSettings(**values)

    yield make
    # Leave nothing behind in the shared stores: this test's database, stream and keys.
    with MongoClient(mongodb_url) as mongo:
        mongo.drop_database(f"{namespace}momentum_auth")
    redis = Redis.from_url(redis_url)
    try:
        keys = list(redis.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            redis.delete(*keys)
    finally:
        redis.close()


@asynccontextmanager
async def running(settings: AuthSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            yield app, client


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with running(make_settings()) as (_, http):
        yield http


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def ed25519_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def register(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"email": unique_email(), "password": PASSWORD, **fields}
    response = await client.post("/auth/register", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **headers: str
) -> dict[str, Any]:
    response = await client.post(
        "/auth/login", json={"email": email, "password": password}, headers=headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Account:
    email: str
    user: dict[str, Any]
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


async def new_account(client: httpx.AsyncClient, **fields: Any) -> Account:
    user = await register(client, **fields)
    tokens = await login(client, user["email"])
    return Account(user["email"], user, tokens["access_token"], tokens["refresh_token"])


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body
