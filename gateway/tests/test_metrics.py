"""The gateway's metrics: on a listener of their own, never on the public port; proxied
requests labelled by their prefix, never their path; failed revocation checks counted."""

import uuid
from collections.abc import Iterator

import httpx
import pytest
from momentum_gateway.main import create_app
from momentum_libs.stores import free_port
from momentum_libs.testing.metrics import sample
from momentum_libs.testing.tokens import TestSigner

from .conftest import ServerThread, Upstream, bearer, gateway_settings


@pytest.fixture
def gateway_and_metrics(
    upstreams: dict[str, Upstream], redis_url: str, mongodb_url: str
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    metrics_port = free_port()
    # The sessions Redis is dead: every revocation check fails (503).
    settings = gateway_settings(
        upstreams,
        (redis_url, mongodb_url),
        metrics_port=metrics_port,
        sessions_redis_url="redis://127.0.0.1:1/0",
    )
    server = ServerThread(create_app(settings)).start()
    try:
        with (
            httpx.Client(base_url=server.url, timeout=15) as public,
            httpx.Client(base_url=f"http://127.0.0.1:{metrics_port}", timeout=15) as metrics,
        ):
            yield public, metrics
    finally:
        server.stop()


def test_metrics_are_on_their_own_listener_and_not_on_the_public_port(
    gateway_and_metrics: tuple[httpx.Client, httpx.Client],
) -> None:
    public, metrics = gateway_and_metrics
    assert public.get("/metrics").status_code == 404
    assert public.post("/auth/login", json={}).status_code == 422  # the stand-in judged it
    raw_path = f"/auth/{uuid.uuid4().hex}"  # a path no other test of this process sends
    unknown = public.post(raw_path, json={}).status_code
    assert public.get("/auth").status_code == 401
    scraped = metrics.get("/metrics")
    assert scraped.status_code == 200
    text = scraped.text
    assert 'momentum_http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert 'momentum_http_requests_total{method="POST",route="/auth/{path}",status="422"}' in text
    assert 'momentum_http_requests_total{method="GET",route="/auth",status="401"}' in text
    assert f'route="/auth/{{path}}",status="{unknown}"' in text
    assert raw_path not in text  # the prefix, never the path
    assert "process_resident_memory_bytes" in text


def test_a_revocation_check_that_cannot_ask_redis_is_counted(
    gateway_and_metrics: tuple[httpx.Client, httpx.Client], signer: TestSigner
) -> None:
    public, _ = gateway_and_metrics
    before = sample("momentum_revocation_check_failures_total")
    response = public.get("/goals/g1", headers=bearer(signer.mint()))
    assert response.status_code == 503
    assert sample("momentum_revocation_check_failures_total") == before + 1
    assert (
        sample("momentum_http_requests_total", method="GET", route="/goals/{path}", status="503")
        >= 1
    )
