"""What every service's FastAPI app has: problem+json errors, request ids, ETags and 304s,
logging, traces, /health, and Prometheus metrics at /metrics (internal: the gateway routes
no /metrics)."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI

from momentum_libs.conditional import ConditionalGetMiddleware
from momentum_libs.logging import configure_logging
from momentum_libs.metrics import HttpMetricsMiddleware, metrics_response
from momentum_libs.problems import install_problem_handlers
from momentum_libs.request_id import RequestIdMiddleware
from momentum_libs.settings import ServiceSettings
from momentum_libs.tracing import configure_tracing, install_tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def create_service_app(
    service: str,
    settings: ServiceSettings,
    lifespan: Lifespan,
    *,
    title: str,
    version: str = "1.0.0",
    **kwargs: Any,
) -> FastAPI:
    configure_logging(service, settings.log_level, settings.log_json)
    configure_tracing(service, settings.otel_exporter_otlp_endpoint)
    app = FastAPI(
        title=title,
        version=version,
        lifespan=lifespan,
        # No 307 from `/goals/` to `/goals`: behind the gateway its Location would name
        # this service's own internal host and port (leaked, and a way around the edge).
        redirect_slashes=False,
        **kwargs,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(ConditionalGetMiddleware)  # inside: a 304 gets its X-Request-ID too
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(HttpMetricsMiddleware)  # it times everything inside
    app.add_api_route("/metrics", metrics_response, include_in_schema=False)
    install_tracing(app)  # outermost: the request log line in its span

    @app.get("/health", tags=["health"], summary="Liveness of this service")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
