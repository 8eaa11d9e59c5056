"""GatewaySettings from the environment, and the app started the way devstack starts it."""

import os
import sys
import time
from pathlib import Path

import httpx
import pytest
from momentum_gateway.settings import GatewaySettings
from momentum_libs.stores import ManagedProcess, free_port

from .conftest import Upstream, header_values


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings tests see only what they set, whatever the shell exported."""
    for name in list(os.environ):
        if name.startswith(("MOMENTUM_", "MONGODB_", "REDIS_")):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = GatewaySettings()
    assert settings.auth_url == "http://127.0.0.1:8001"
    assert settings.tracking_url == "http://127.0.0.1:8002"
    assert settings.analytics_url == "http://127.0.0.1:8003"
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.cors_origins == []
    assert settings.revoked_session_ttl_seconds >= 15 * 60


def test_read_from_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTUM_GATEWAY_AUTH_URL", "http://auth.internal:9001/")
    monkeypatch.setenv("MOMENTUM_GATEWAY_READ_TIMEOUT_SECONDS", "3.5")
    monkeypatch.setenv("MOMENTUM_GATEWAY_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("MOMENTUM_GATEWAY_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("MOMENTUM_JWKS_URL", "http://auth.internal:9001/.well-known/jwks.json")
    settings = GatewaySettings()
    assert settings.auth_url == "http://auth.internal:9001"
    assert settings.read_timeout_seconds == 3.5
    assert settings.max_body_bytes == 2048
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.jwks_url.startswith("http://auth.internal:9001")


def test_cors_origins_as_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTUM_GATEWAY_CORS_ORIGINS", '["https://a.example"]')
    assert GatewaySettings().cors_origins == ["https://a.example"]


def test_empty_cors_origins_keeps_cors_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTUM_GATEWAY_CORS_ORIGINS", "")  # docker-compose's default
    assert GatewaySettings().cors_origins == []


def test_bad_upstream_url_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        GatewaySettings(auth_url="auth:8001")


def test_production_refuses_default_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTUM_ENVIRONMENT", "production")
    monkeypatch.setenv("MOMENTUM_JWKS_URL", "http://auth:8001/.well-known/jwks.json")
    with pytest.raises(ValueError, match="MOMENTUM_GATEWAY_TRACKING_URL"):
        GatewaySettings(auth_url="http://auth:8001")
    settings = GatewaySettings(
        auth_url="http://auth:8001",
        tracking_url="http://tracking:8002",
        analytics_url="http://analytics:8003",
    )
    assert settings.is_production


def test_factory_runs_under_uvicorn_as_devstack_starts_it(
    upstreams: dict[str, Upstream], redis_url: str, mongodb_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MOMENTUM_GATEWAY_AUTH_URL": upstreams["auth"].url,
        "MOMENTUM_GATEWAY_TRACKING_URL": upstreams["tracking"].url,
        "MOMENTUM_GATEWAY_ANALYTICS_URL": upstreams["analytics"].url,
        "MOMENTUM_JWKS_URL": f"{upstreams['auth'].url}/.well-known/jwks.json",
        "REDIS_URL": redis_url,
        "MONGODB_URL": mongodb_url,
        "MOMENTUM_GATEWAY_METRICS_PORT": "0",
    }
    args = [
        sys.executable, "-m", "uvicorn", "--factory", "momentum_gateway.main:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        "--no-server-header", "--no-proxy-headers",
    ]  # fmt: skip
    proc = ManagedProcess("gateway", args, env=env, log_path=tmp_path / "gateway.log").start()
    try:
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline and proc.running():
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert response is not None, (tmp_path / "gateway.log").read_text()
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
        assert "server" not in response.headers
        assert response.headers["x-frame-options"] == "DENY"
        # With --no-proxy-headers, a client's own X-Forwarded-For never becomes its address.
        echo = httpx.post(
            f"http://127.0.0.1:{port}/auth/register",
            headers={"X-Forwarded-For": "6.6.6.6"},
            timeout=5,
        ).json()
        assert header_values(echo, "x-forwarded-for") == ["127.0.0.1"]
    finally:
        proc.stop()
