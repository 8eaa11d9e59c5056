"""The proxy: pure ASGI, a pooled aiohttp session per service, the response streamed back.

For a path under a service's prefix it checks the access token (unless the route
is public), reads the body (bounded), rebuilds the headers (no hop-by-hop, no
identity a client made up, ``X-Forwarded-For`` = the real peer, ``X-Request-ID``,
``traceparent``),
and streams the upstream's answer back. Any other path goes on to the FastAPI
routes (health, docs, OpenAPI, the JSON 404).
"""

from typing import Any

import aiohttp
import httpx
import structlog
from momentum_libs.deps import verify_bearer
from momentum_libs.problems import ProblemError, unexpected_error_response
from momentum_libs.request_id import accept_or_make
from momentum_libs.tracing import TRACE_HEADERS, trace_headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from momentum_gateway.routing import PUBLIC_PATHS, has_dot_segment, service_for
from momentum_gateway.runtime import Runtime, RuntimeRef
from momentum_gateway.upstream import Opened, PoolTimeoutError, upstream_problem

log = structlog.get_logger(__name__)

# RFC 9110 §7.6.1 hop-by-hop fields, plus those only meaningful to this one connection.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Request fields the gateway sets itself or that a client must not choose.
_REQUEST_DROP = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"expect",
    b"x-request-id",
    b"x-user-id",
    b"x-real-ip",
    b"forwarded",
    *TRACE_HEADERS,  # replaced by the trace context the gateway continues (or started)
}
_REQUEST_DROP_PREFIXES = (b"x-forwarded-", b"x-momentum-")
NO_STORE = "no-store"
IMPORTS_PATH = "/imports"
# Response fields the gateway's own server writes.
_RESPONSE_DROP = HOP_BY_HOP | {b"server", b"date"}


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """Fields a `Connection` header names are hop-by-hop too (RFC 9110 §7.6.1)."""
    names: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            names.update(part.strip().lower() for part in value.split(b",") if part.strip())
    return names


def request_headers(scope: Scope, request_id: str) -> list[tuple[bytes, bytes]]:
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    extra_drop = _connection_tokens(raw)
    out = [
        (name, value)
        for name, value in raw
        if name not in _REQUEST_DROP
        and not name.startswith(_REQUEST_DROP_PREFIXES)
        and name not in extra_drop
    ]
    client = scope.get("client")
    if client:
        out.append((b"x-forwarded-for", str(client[0]).encode("latin-1")))
    out.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1")))
    out.append((b"x-request-id", request_id.encode("latin-1")))
    out.extend(trace_headers())
    return out


def response_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's fields a client gets, plus ``Cache-Control: no-store`` unless the
    upstream chose one: every proxied answer is one user's data (a token pair, a profile,
    goals, logs, analytics), never for a shared cache or a browser's disk. ETags still
    work: a client keeps the body itself and revalidates with ``If-None-Match``."""
    lowered = [(name.lower(), value) for name, value in raw]
    extra_drop = _connection_tokens(lowered)
    out = [
        (name, value)
        for name, value in lowered
        if name not in _RESPONSE_DROP and name not in extra_drop
    ]
    if not any(name == b"cache-control" for name, _ in out):
        out.append((b"cache-control", NO_STORE.encode()))
    return out


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when the client went away. Over ``limit``: 413."""
    declared = _header(scope, b"content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ProblemError(400, "The Content-Length header is not a number.") from None
        if length > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def _too_large(limit: int) -> ProblemError:
    return ProblemError(
        413, f"The request body is larger than {limit} bytes.", type_slug="payload-too-large"
    )


class ProxyMiddleware:
    def __init__(self, app: ASGIApp, runtime: RuntimeRef) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        service = service_for(path)
        if service is None:
            await self.app(scope, receive, send)
            return
        runtime = self.runtime.current
        try:
            if runtime is None:
                raise ProblemError(503, "The gateway is starting; try again shortly.")
            if has_dot_segment(path):
                raise ProblemError(404, "No resource at this path.")
            response = await self._open(runtime, service, scope, receive)
        except ProblemError as exc:
            refusal = exc.response()
            refusal.headers["Cache-Control"] = NO_STORE  # one rule for all proxied paths
            await refusal(scope, receive, send)
            return
        except Exception:  # a bug of ours: logged with its trace, never shown
            log.exception("proxy_error", upstream=service, path=path)
            await unexpected_error_response()(scope, receive, send)
            return
        if response is None:  # the client left before sending its body
            return
        await self._relay(service, response, send)

    async def _open(
        self, runtime: Runtime, service: str, scope: Scope, receive: Receive
    ) -> Opened | None:
        path: str = scope["path"]
        if path not in PUBLIC_PATHS:
            await verify_bearer(runtime.verifier, _header(scope, b"authorization"))
        body = await read_body(scope, receive, runtime.settings.max_body_bytes)
        if body is None:
            return None
        state: dict[str, Any] = scope.get("state") or {}
        request_id = state.get("request_id") or accept_or_make(None)
        raw_path: bytes = scope.get("raw_path") or path.encode("utf-8")
        query: bytes = scope.get("query_string", b"")
        target = raw_path + b"?" + query if query else raw_path
        # An import answers once its whole file is merged: it alone may take longer.
        slow = scope["method"] == "POST" and path == IMPORTS_PATH
        try:
            return await runtime.upstreams[service].open(
                scope["method"],
                target,
                request_headers(scope, request_id),
                body,
                read_timeout_s=runtime.settings.import_read_timeout_seconds if slow else None,
            )
        except (aiohttp.ClientError, httpx.HTTPError, TimeoutError, PoolTimeoutError) as exc:
            raise upstream_problem(service, exc) from exc

    async def _relay(self, service: str, opened: Opened, send: Send) -> None:
        # The upstream response is released (and its pool slot freed) whatever happens.
        try:
            start: Message = {
                "type": "http.response.start",
                "status": opened.status,
                "headers": response_headers(opened.headers),
            }
            await send(start)
            try:
                async for chunk in opened.chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (aiohttp.ClientError, httpx.HTTPError, TimeoutError) as exc:
                # Headers are out: all we can do is cut the connection, so the client sees
                # a broken response rather than a short one taken for whole.
                log.warning("upstream_broke_mid_body", upstream=service, error=type(exc).__name__)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client went away; nothing to tell it
        finally:
            await opened.close()
