"""Fixtures: the tracking app in-process on real stores, and tokens from a test signer."""

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from momentum_libs.testing.tokens import TestSigner
from momentum_tracking.main import create_app
from momentum_tracking.settings import TrackingSettings
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).parent))  # tracking_support, beside this file

from tracking_support import Api


@pytest.fixture(scope="session")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture
def settings_for(
    mongodb_url: str, redis_url: str, namespace: str
) -> Callable[..., TrackingSettings]:
    """Settings of a test app: its own database and stream; overrides as keywords."""

    def make(**overrides: Any) -> TrackingSettings:
        values: dict[str, Any] = {
            "mongodb_url": mongodb_url,
            "redis_url": redis_url,
            "mongodb_db": f"{namespace}momentum_tracking",
            "events_stream": f"{namespace}momentum.events",
            "log_json": False,
            "log_level": "WARNING",
            "relay_sweep_interval_s": 0.2,
            "relay_max_backoff_s": 0.5,
            "consumer_block_ms": 200,
        }
        values.update(overrides)
        return TrackingSettings(**values)

    return make


@pytest.fixture
def settings(settings_for: Callable[..., TrackingSettings]) -> TrackingSettings:
    return settings_for()


@pytest.fixture
async def api(settings: TrackingSettings, signer: TestSigner) -> AsyncIterator[Api]:
    app = create_app(settings, token_keys=signer.keys)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tracking") as client:
            yield Api(client, signer, app)


@pytest.fixture
async def stream_redis(settings: TrackingSettings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.delete(settings.events_stream, settings.dead_letters)
        await client.aclose()
