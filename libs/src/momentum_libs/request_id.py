"""X-Request-ID: kept from the client when sane, else made; bound to every log line.

The same middleware writes the one access line per request (uvicorn's is off: it
knows no request id). The query string is left out: it is the client's business.
"""

import re
import time
import uuid
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from momentum_libs.problems import unexpected_error_response

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def accept_or_make(candidate: str | None) -> str:
    """A client's id is echoed only if it cannot smuggle anything into logs or headers."""
    # fullmatch: with match, "$" would let one trailing newline through.
    if candidate and _SAFE_ID.fullmatch(candidate):
        return candidate
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed proxy bodies)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER.encode():
                incoming = value.decode("latin-1")
                break
        request_id = accept_or_make(incoming)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)

        response_started = False
        status = 500
        started_at = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal response_started, status
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if response_started:
                raise  # nothing more can be said to the client; the server logs it
            # Starlette's ServerErrorMiddleware sits outside every added middleware: its 500
            # would carry no X-Request-ID and be logged after the id is unbound. Answer here.
            log.exception("unhandled_error", path=scope.get("path"), method=scope.get("method"))
            await unexpected_error_response()(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round((time.perf_counter() - started_at) * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")
            request_id_var.reset(token)
