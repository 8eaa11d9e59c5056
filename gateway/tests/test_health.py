"""GET /health (the services) and GET /health/db (the stores), each a real round trip."""

from collections.abc import Callable

import httpx
from momentum_libs.testing.plugin import OwnRedis

from .conftest import StartGateway, Upstream


def test_livez_answers_for_the_gateway_alone_even_with_every_service_down(
    start_gateway: StartGateway, dead_url: str
) -> None:
    client = start_gateway(auth_url=dead_url, tracking_url=dead_url, analytics_url=dead_url)
    assert client.get("/health").status_code == 503
    response = client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_ok_when_every_service_answers(gw: httpx.Client) -> None:
    response = gw.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "services": {"auth": "ok", "tracking": "ok", "analytics": "ok"},
    }


def test_health_degraded_names_the_service_that_is_down(
    start_gateway: StartGateway, dead_url: str
) -> None:
    client = start_gateway(analytics_url=dead_url)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "degraded",
        "services": {"auth": "ok", "tracking": "ok", "analytics": "down"},
    }


def test_health_counts_an_unhealthy_answer_as_down(
    start_gateway: StartGateway, spare_upstream: Callable[[str], Upstream]
) -> None:
    tracking = spare_upstream("tracking")
    client = start_gateway(tracking_url=tracking.url)
    assert client.get("/health").status_code == 200
    tracking.healthy = False
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["services"] == {"auth": "ok", "tracking": "down", "analytics": "ok"}


def test_health_db_ok_with_real_stores(gw: httpx.Client) -> None:
    response = gw.get("/health/db")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mongodb": "ok", "redis": "ok"}


def test_health_db_names_mongodb_when_it_is_down(
    start_gateway: StartGateway, dead_url: str
) -> None:
    client = start_gateway(mongodb_url=dead_url.replace("http://", "mongodb://"))
    response = client.get("/health/db")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "mongodb": "down", "redis": "ok"}


def test_health_db_names_redis_when_it_is_down(
    start_gateway: StartGateway, own_redis: OwnRedis
) -> None:
    client = start_gateway(redis_url=own_redis.url)
    assert client.get("/health/db").status_code == 200
    own_redis.stop()
    response = client.get("/health/db")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "mongodb": "ok", "redis": "down"}
