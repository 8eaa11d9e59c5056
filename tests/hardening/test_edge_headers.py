"""What every gateway answer carries: security headers, no server version; CORS closed.

The session stack's gateway runs with the default settings (no CORS origin at all);
the private stack's allows exactly one origin, to show CORS is configurable and
still closed to every other origin.
"""

import httpx
import pytest

from ..conftest import Account
from .conftest import CORS_ORIGIN, OwnStack

FOREIGN = "https://evil.example"


def _requests(client: httpx.Client, account: Account) -> list[httpx.Response]:
    """A spread of answers: own routes, proxied 2xx, proxied and edge errors."""
    return [
        client.get("/health"),
        client.get("/health/db"),
        client.get("/openapi.json"),
        client.get("/docs"),
        client.get("/nowhere"),
        client.get("/goals", headers=account.headers),
        client.get("/goals"),  # 401 at the edge
        client.get("/goals/nope", headers=account.headers),  # 404 from the service
        client.get("/analytics/dashboard", headers=account.headers),
        client.get("/users/me", headers=account.headers),
        client.post("/auth/login", json={}),  # 422 from auth
        client.request("PROPFIND", "/goals", headers=account.headers),
    ]


def test_security_headers_and_no_server_version(gateway: httpx.Client, account: Account) -> None:
    for response in _requests(gateway, account):
        where = f"{response.request.method} {response.request.url.path} {response.status_code}"
        assert response.headers.get("x-content-type-options") == "nosniff", where
        assert response.headers.get("x-frame-options") == "DENY", where
        assert "x-request-id" in response.headers, where
        server = response.headers.get("server", "")
        assert not any(ch.isdigit() for ch in server), (where, server)
        assert "uvicorn" not in server.lower(), (where, server)
        assert "x-powered-by" not in response.headers, where
        for name in ("x-upstream", "via"):
            assert name not in response.headers, where


def test_cors_is_closed_by_default(gateway: httpx.Client, account: Account) -> None:
    for origin in (FOREIGN, CORS_ORIGIN, "null"):
        simple = gateway.get("/goals", headers={**account.headers, "Origin": origin})
        assert simple.status_code == 200
        assert "access-control-allow-origin" not in simple.headers
        assert "access-control-allow-credentials" not in simple.headers
        preflight = gateway.options(
            "/goals",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code < 500
        assert "access-control-allow-origin" not in preflight.headers
        assert "access-control-allow-methods" not in preflight.headers


@pytest.mark.parametrize("path", ["/goals", "/auth/login", "/analytics/dashboard"])
def test_cors_allows_the_configured_origin_only(
    own_stack: OwnStack, own_gateway: httpx.Client, path: str
) -> None:
    def preflight(origin: str) -> httpx.Response:
        return own_gateway.options(
            path,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )

    allowed = preflight(CORS_ORIGIN)
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    for origin in (FOREIGN, "null", CORS_ORIGIN + ".evil.example", "http://app.momentum.example"):
        refused = preflight(origin)
        assert refused.status_code < 500
        assert "access-control-allow-origin" not in refused.headers, origin
        simple = own_gateway.get("/health", headers={"Origin": origin})
        assert "access-control-allow-origin" not in simple.headers, origin
    simple = own_gateway.get("/health", headers={"Origin": CORS_ORIGIN})
    assert simple.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert simple.headers["x-content-type-options"] == "nosniff"
