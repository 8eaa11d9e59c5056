"""Conditional requests (RFC 9110 §13): entity tags, ``If-None-Match`` on reads, ``If-Match``
on writes.

Reads: :class:`ConditionalGetMiddleware` gives every ``200`` answer to a GET a strong
``ETag`` (a hash of its body, unless the route set a better one, such as a document's
:func:`momentum_libs.outbox.entity_tag`) and answers ``304`` without a body when the
client's ``If-None-Match`` names it. Writes: :data:`IfMatchHeader` parses ``If-Match``
for a route, :meth:`IfMatch.matches` compares (strongly), and :func:`precondition_failed`
is the ``412``.
"""

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from momentum_libs.problems import ProblemError, problem_responses

# The fields a 304 keeps of the 200 it stands for (RFC 9110 §15.4.5); the rest describe
# a body that is not sent.
_KEPT_ON_304 = frozenset({b"etag", b"cache-control", b"vary", b"content-location", b"expires"})


def body_etag(body: bytes) -> str:
    """A strong tag of a representation's exact bytes (lists, computed reads)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _tags(header: str) -> list[str]:
    return [part.strip() for part in header.split(",") if part.strip()]


def _weak_match(header: str, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110 §13.1.2): ``W/"x"`` names ``"x"`` too."""
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in _tags(header))


class IfMatch:
    """A parsed ``If-Match``: ``*`` (any current representation) or a list of tags."""

    def __init__(self, header: str) -> None:
        self._tags = _tags(header)

    def matches(self, etag: str) -> bool:
        # Strong comparison (RFC 9110 §13.1.1): a weak tag never matches.
        return any(tag == "*" or tag == etag for tag in self._tags)


def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description="Write only if the resource still has this ETag (else 412)",
        ),
    ] = None,
) -> IfMatch | None:
    return None if if_match is None else IfMatch(if_match)


IfMatchHeader = Annotated[IfMatch | None, Depends(_if_match)]
"""A route's ``If-Match`` (None: the client sent none, the write is unconditional)."""


def precondition_failed() -> ProblemError:
    return ProblemError(
        412,
        "The resource changed since the ETag given in If-Match; read it again.",
        type_slug="precondition-failed",
    )


def document_preconditions(*routers: APIRouter) -> None:
    """Declare the 412 on every route of ``routers`` that takes :data:`IfMatchHeader`
    (before they are included): it comes with the header, no route has to remember it."""
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and _takes_if_match(route.dependant):
                route.responses.update(problem_responses(412))


def _takes_if_match(dependant: Dependant) -> bool:
    return any(d.call is _if_match or _takes_if_match(d) for d in dependant.dependencies)


class ConditionalGetMiddleware:
    """ETag on every 200 to a GET, and 304 for an ``If-None-Match`` that names it.

    Pure ASGI. A 200 without an ETag is buffered to hash it: these are small JSON
    documents, and the gateway streams, not this service.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if_none_match = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None
        )
        # "pass": not a 200, or tagged and sent; "drop": a 304 went instead; "hash": held.
        mode = "pass"
        start: Message = {}
        chunks: list[bytes] = []

        async def send_conditional(message: Message) -> None:
            nonlocal mode, start
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    await send(message)
                    return
                etag = _header(message, b"etag")
                if etag is None:
                    mode, start = "hash", message
                    return
                # Tagged by the route: decided now, and its body streams on.
                mode = "pass" if await _send_start(send, message, etag, if_none_match) else "drop"
                return
            if mode == "pass":
                await send(message)
                return
            if mode == "drop":
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            etag = body_etag(body)
            start["headers"] = [*start["headers"], (b"etag", etag.encode("latin-1"))]
            if await _send_start(send, start, etag, if_none_match):
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_conditional)


def _header(message: Message, name: bytes) -> str | None:
    for key, value in message.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _send_start(send: Send, start: Message, etag: str, if_none_match: str | None) -> bool:
    """Send the 200's start, or a 304's (then its body is empty). True: send the body."""
    if if_none_match is None or not _weak_match(if_none_match, etag):
        await send(start)
        return True
    kept = [(k, v) for k, v in start["headers"] if k.lower() in _KEPT_ON_304]
    await send({"type": "http.response.start", "status": 304, "headers": kept})
    await send({"type": "http.response.body", "body": b""})
    return False
