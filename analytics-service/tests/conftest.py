"""analytics-service in-process against the real stores (plugin fixtures), a namespace each."""

import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from momentum_analytics.main import create_app
from momentum_analytics.projections.repository import ProjectionRepository
from momentum_analytics.projections.service import ProjectionService
from momentum_analytics.settings import AnalyticsSettings
from momentum_libs.mongo import mongo_client
from momentum_libs.testing.tokens import TestSigner
from momentum_libs.testing.waiting import eventually
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).parent))

from .analytics_support import FakeTracking, drained

SettingsFactory = Callable[..., AnalyticsSettings]

# Each example runs against the real store, so no deadline; the fixtures are shared on
# purpose (one database per module, each example a new user).
_HYPOTHESIS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("ci", max_examples=60, **_HYPOTHESIS)  # keeps the suite short
settings.register_profile("thorough", max_examples=1000, **_HYPOTHESIS)
settings.load_profile("ci")
# The pure streak engine's property (test_streak_rules.py) runs no store: many more examples.
settings.register_profile("pure", parent=settings.get_profile("ci"), max_examples=600)


@pytest.fixture
def make_settings(mongodb_url: str, redis_url: str, namespace: str) -> SettingsFactory:
    def make(**overrides: Any) -> AnalyticsSettings:
        values: dict[str, Any] = {
            "mongodb_url": mongodb_url,
            "redis_url": redis_url,
            "mongodb_db": f"{namespace}momentum_analytics",
            "tracking_mongodb_db": f"{namespace}momentum_tracking",
            "events_stream": f"{namespace}momentum.events",
            "consumer_block_ms": 100,
            "consumer_claim_idle_ms": 1000,
            "log_json": False,
            "log_level": "WARNING",
        }
        values.update(overrides)
        return AnalyticsSettings(**values)

    return make


@pytest.fixture(scope="module")
async def projections(mongodb_url: str) -> AsyncIterator[ProjectionService]:
    """The consumer's handler over a database of this module's own, without the stream."""
    client = mongo_client(mongodb_url, 5000)
    repo = ProjectionRepository(client[f"p{uuid.uuid4().hex[:8]}_momentum_analytics"])
    await repo.ensure_indexes()
    yield ProjectionService(repo)
    await client.close()


@pytest.fixture(scope="session")
def signer() -> TestSigner:
    return TestSigner()


@dataclass
class Service:
    settings: AnalyticsSettings
    client: httpx.AsyncClient
    redis: Redis
    mongo: AsyncMongoClient[dict[str, Any]]
    repo: ProjectionRepository
    signer: TestSigner

    def headers(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.mint(user_id)}"}

    async def get(self, path: str, user_id: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers(user_id))

    async def send(self, tracker: FakeTracking) -> None:
        """Publish what ``tracker`` emitted and wait until the consumer has applied it."""
        await tracker.flush(self.redis, self.settings.events_stream)
        await self.wait_drained()

    async def wait_drained(self, timeout_s: float = 60.0) -> None:
        async def check() -> bool:
            return await drained(
                self.redis, self.settings.events_stream, self.settings.consumer_group
            )

        assert await eventually(check, timeout_s=timeout_s), "the consumer never caught up"

    @property
    def tracking_db(self) -> Any:
        return self.mongo[self.settings.tracking_mongodb_db]


@pytest.fixture
async def service(make_settings: SettingsFactory, signer: TestSigner) -> AsyncIterator[Service]:
    settings = make_settings()
    app = create_app(settings, token_keys=signer.keys)
    redis = Redis.from_url(settings.redis_url)
    mongo = mongo_client(settings.mongodb_url, 5000)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
            yield Service(
                settings,
                client,
                redis,
                mongo,
                ProjectionRepository(mongo[settings.mongodb_db]),
                signer,
            )
    await redis.aclose()
    await mongo.close()
