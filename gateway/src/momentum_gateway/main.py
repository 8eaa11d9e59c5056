"""The gateway app: ``uvicorn --factory momentum_gateway.main:create_app``.

Middleware, outermost first (all pure ASGI): traces → metrics → security headers →
request id → CORS (only when origins are configured) → per-client limits → the proxy →
FastAPI's own routes
(``/livez``, ``/health``, ``/health/db``, ``/openapi.json``, ``/docs``, ``/redoc``, and the
JSON 404).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import fastapi_offline
import httpx
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from momentum_libs.health import Check, Status, probe_all, stores_health
from momentum_libs.logging import configure_logging
from momentum_libs.metrics import HttpMetricsMiddleware, MetricsListener
from momentum_libs.problems import ProblemError, install_problem_handlers
from momentum_libs.request_id import RequestIdMiddleware
from momentum_libs.tracing import configure_tracing, install_tracing, route_template
from pydantic import BaseModel, ConfigDict
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from momentum_gateway.client_limits import ClientLimitsMiddleware
from momentum_gateway.proxy import ProxyMiddleware
from momentum_gateway.routing import first_segment, proxied_route, service_for
from momentum_gateway.runtime import Runtime, RuntimeRef
from momentum_gateway.security import SecurityHeadersMiddleware
from momentum_gateway.settings import GatewaySettings

# Swagger UI's and ReDoc's JavaScript and CSS, as the fastapi-offline wheel ships them:
# served by the gateway itself, so the docs pages load with no network (no CDN).
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS_URL = "/docs-assets"

TITLE = "Momentum API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Momentum's HTTP API, served by the gateway. This document is merged at run time "
    "from the services' own OpenAPI documents."
)


class GatewayHealth(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "services": {"auth": "ok", "tracking": "ok", "analytics": "ok"}}
            ]
        }
    )

    status: Literal["ok", "degraded"]
    services: dict[str, Status]


class Liveness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class StoresHealth(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "mongodb": "ok", "redis": "ok"}]}
    )

    status: Literal["ok", "degraded"]
    mongodb: Status
    redis: Status


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime | None = request.app.state.runtime.current
    if runtime is None:
        raise ProblemError(503, "The gateway is starting; try again shortly.")
    return runtime


GatewayRuntime = Annotated[Runtime, Depends(_runtime)]


def _service_check(client: httpx.AsyncClient, url: str, timeout_s: float) -> Check:
    async def check() -> None:
        response = await client.get(f"{url}/health", timeout=timeout_s)
        if response.status_code != 200:
            raise RuntimeError(f"health answered {response.status_code}")

    return check


def _add_routes(app: FastAPI) -> None:
    @app.get(
        "/livez",
        operation_id="getLiveness",
        tags=["health"],
        summary="Liveness of this gateway process alone (its probes' target)",
        response_model=Liveness,
    )
    async def livez() -> Liveness:
        # Nothing behind it is asked: a service's outage must not restart every gateway.
        return Liveness(status="ok")

    @app.get(
        "/health",
        operation_id="getHealth",
        tags=["health"],
        summary="Liveness of the gateway and of every service behind it",
        response_model=GatewayHealth,
        responses={503: {"model": GatewayHealth, "description": "A service is down"}},
    )
    async def health(runtime: GatewayRuntime) -> Response:
        timeout_s = runtime.settings.health_timeout_seconds
        checks = {
            name: _service_check(runtime.client, url, timeout_s)
            for name, url in runtime.settings.upstream_urls.items()
        }
        services = await probe_all(checks, timeout_s + 0.5)
        ok = all(status == "ok" for status in services.values())
        body = {"status": "ok" if ok else "degraded", "services": services}
        return _json(body, 200 if ok else 503)

    @app.get(
        "/health/db",
        operation_id="getStoresHealth",
        tags=["health"],
        summary="Round trips to MongoDB and Redis",
        response_model=StoresHealth,
        responses={503: {"model": StoresHealth, "description": "A store is down"}},
    )
    async def health_db(runtime: GatewayRuntime) -> Response:
        timeout_s = runtime.settings.store_timeout_ms / 1000
        return _json(*await stores_health(runtime.mongo, runtime.redis, timeout_s))

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(runtime: GatewayRuntime) -> Response:
        return Response(await runtime.openapi.document(), media_type="application/json")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{TITLE} — Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            # The token typed into "Authorize" survives a reload of the page.
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{TITLE} — ReDoc",
            redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            # Google Fonts is a CDN too: ReDoc falls back to the system fonts.
            with_google_fonts=False,
        )

    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")


def own_document(app: FastAPI) -> dict[str, Any]:
    """The gateway's own routes as OpenAPI: what the services' documents are merged into."""
    return get_openapi(title=TITLE, version=VERSION, description=DESCRIPTION, routes=app.routes)


def trace_upstream_calls() -> None:
    """A client span per proxied request (aiohttp), its traceparent the one sent upstream."""
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    instrumentor = AioHttpClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def span_name(scope: Scope) -> str | None:
    """A proxied request's span is named by its service's prefix (``POST /daily-logs``,
    whatever the id after it); the gateway's own routes by their template."""
    path: str = scope.get("path", "")
    if service_for(path):
        return "/" + first_segment(path)
    return route_template(scope)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    if configure_tracing("gateway", settings.otel_exporter_otlp_endpoint):
        trace_upstream_calls()
    ref = RuntimeRef()
    own: dict[str, Any] = {}

    def own_openapi() -> dict[str, Any]:
        if not own:
            own.update(own_document(app))
        return own

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[None]:
        # Its own listener: /metrics is never served on the public port.
        metrics = MetricsListener(settings.metrics_host, settings.metrics_port)
        running.state.metrics_port = metrics.port
        runtime = Runtime.open(settings, own_openapi)
        ref.current = runtime
        try:
            yield
        finally:
            ref.current = None
            await asyncio.shield(runtime.close())
            metrics.close()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.runtime = ref
    install_problem_handlers(app)
    _add_routes(app)

    # add_middleware puts each one outside the previous: innermost first.
    app.add_middleware(ProxyMiddleware, runtime=ref)
    # Inside CORS: a preflight is answered before it could count against a client.
    app.add_middleware(ClientLimitsMiddleware, runtime=ref)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            # Conditional requests (docs/http-semantics.md) need their fields readable by
            # a page's script: If-Match / If-None-Match sent, ETag and the replay flag read.
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "If-Match",
                "If-None-Match",
            ],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "WWW-Authenticate",
                "ETag",
                "Idempotent-Replayed",
                "RateLimit",
                "RateLimit-Policy",
            ],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(HttpMetricsMiddleware, route_of=proxied_route)
    install_tracing(app, span_name)
    return app
