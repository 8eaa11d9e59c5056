"""Security headers on every response; CORS closed unless origins are configured."""

import httpx
import pytest
from momentum_libs.testing.tokens import TestSigner

from .conftest import StartGateway, bearer

ORIGIN = "https://app.example"


def assert_secured(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers


@pytest.mark.parametrize(
    ("path", "status", "token"),
    [
        ("/goals/x", 200, True),  # proxied
        ("/goals/leaky", 200, True),  # proxied; the upstream sent its own Server header
        ("/goals", 401, False),  # refused at the edge
        ("/nope", 404, False),  # FastAPI's 404
        ("/health", 200, False),
        ("/openapi.json", 200, False),
        ("/docs", 200, False),
    ],
)
def test_security_headers_on_every_response(
    gw: httpx.Client, signer: TestSigner, path: str, status: int, token: bool
) -> None:
    response = gw.get(path, headers=bearer(signer.mint()) if token else {})
    assert response.status_code == status
    assert_secured(response)


def test_security_headers_on_upstream_failures(
    start_gateway: StartGateway, signer: TestSigner, dead_url: str
) -> None:
    client = start_gateway(tracking_url=dead_url)
    response = client.get("/goals", headers=bearer(signer.mint()))
    assert response.status_code == 503
    assert_secured(response)


def test_cors_is_closed_by_default(gw: httpx.Client, signer: TestSigner) -> None:
    preflight = gw.options(
        "/goals",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = gw.get("/goals", headers={"Origin": ORIGIN, **bearer(signer.mint())})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


def test_cors_opens_for_configured_origins_only(
    start_gateway: StartGateway, signer: TestSigner
) -> None:
    client = start_gateway(cors_origins=[ORIGIN])
    preflight = client.options(
        "/goals",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "if-match" in allowed and "if-none-match" in allowed
    assert_secured(preflight)

    simple = client.get("/goals/x", headers={"Origin": ORIGIN, **bearer(signer.mint())})
    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "etag" in exposed and "idempotent-replayed" in exposed

    other = client.options(
        "/goals",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
