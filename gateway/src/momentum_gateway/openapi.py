"""One OpenAPI document, merged at run time from the services' own ``/openapi.json``.

Only the paths a client can reach through the gateway are kept (a service's
``/internal/*``, ``/.well-known/*`` and ``/health`` are not), with just the
components they reference. A component name two services define differently is
renamed (``TrackingItem``) and its references rewritten. Each operation's security
says what the gateway enforces, and every response says what the client gets from
the gateway: error bodies are the one ``Problem`` (``ValidationProblem`` for a 422),
with the headers that status carries, and every response has its ``X-Request-ID``.

The document is cached. Until every service's document has been fetched once the
gateway answers 503 (a partial contract would look complete to a code generator);
after that, a service that cannot be reached contributes its last good document.
"""

import asyncio
import copy
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import structlog
from momentum_libs.problems import PROBLEM_JSON, ProblemError, problem_schemas

from momentum_gateway.routing import PUBLIC_PATHS, has_dot_segment, service_for

log = structlog.get_logger(__name__)

BEARER_SCHEME = "bearerAuth"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
RETRY_MISSING_S = 5.0
_REF_PREFIX = "#/components/"

Json = dict[str, Any]
PROBLEM_REF = "#/components/schemas/Problem"
VALIDATION_PROBLEM_REF = "#/components/schemas/ValidationProblem"
# FastAPI's own 422 body, declared on every route with parameters whether or not it can
# answer 422; a route that can declares the problem itself (problem_responses).
_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
# What the gateway itself may answer on any proxied path (upstream.upstream_problem).
GATEWAY_ERRORS = {
    "429": "Too many requests from this client (client_limits.py): at once, or in this "
    "window; `Retry-After` says when to try again",
    "502": "The service behind this path sent a broken response",
    "503": "The service behind this path is unavailable (or the gateway at capacity)",
    "504": "The service behind this path did not answer in time",
}
SERVERS = [{"url": "/", "description": "The gateway that serves this document"}]
TAG_DESCRIPTIONS = {
    "auth": "Accounts and sessions: register, sign in (JSON or the OAuth2 password form), "
    "rotate the refresh token, sign out.",
    "users": "The signed-in user's profile, password and account.",
    "goals": "North Star goals. A user has at most one active goal.",
    "weekly targets": "Minutes per ISO week (Monday to Sunday) planned for a goal.",
    "daily logs": "Minutes worked towards a goal on a date. Creation is retry-safe with "
    "an `Idempotency-Key`.",
    "breaks": "Days declared protected, for one goal or every goal: today or later, never "
    "the past.",
    "sync": "Offline clients: the change feed since a token, and batches of writes under "
    "ids the client chose.",
    "exports": "A copy of everything the user stored, built in the background; the file is "
    "the user's alone and expires.",
    "imports": "A Momentum export, a CSV of logs or Loop Habit Tracker's export, merged "
    "into the user's data; the same file twice changes nothing.",
    "analytics": "Dashboard, weekly summary, streaks and heatmap, computed from the daily "
    "logs' events: a change shows here moments after it is made.",
    "health": "Liveness of the gateway and of what is behind it.",
}
HEADERS: Json = {
    "X-Request-ID": {
        "description": "This request's id (the client's own when it sent a valid one): "
        "quote it when reporting a problem",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
    },
    "RateLimit-Policy": {
        "description": "The client's quotas (draft-ietf-httpapi-ratelimit-headers-10): "
        '`"window";q=<requests>;w=<seconds>, "in-flight";q=<requests>;qu="concurrent-requests"`',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "What is left of them: "
        '`"window";r=<remaining>;t=<seconds to the reset>, "in-flight";r=<free slots>`',
        "schema": {"type": "string"},
    },
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with: `Bearer`",
        "schema": {"type": "string"},
    },
}
STATUS_HEADERS = {
    "401": ("WWW-Authenticate",),
    "429": ("Retry-After", "RateLimit-Policy", "RateLimit"),
    "503": ("Retry-After",),
}


def _refs(node: Any, found: set[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            section, _, name = ref[len(_REF_PREFIX) :].partition("/")
            found.add((section, name))
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def reachable_components(paths: Json, components: Json) -> set[tuple[str, str]]:
    """Every (section, name) the paths reference, directly or through other components."""
    found: set[tuple[str, str]] = set()
    _refs(paths, found)
    todo = list(found)
    while todo:
        section, name = todo.pop()
        target = components.get(section, {}).get(name)
        more: set[tuple[str, str]] = set()
        _refs(target, more)
        for item in more - found:
            found.add(item)
            todo.append(item)
    return found


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value in renames:
                out[key] = renames[value]
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(value, renames) for value in node]
    return node


def _operations(item: Json) -> list[Json]:
    return [
        operation
        for method, operation in item.items()
        if method in HTTP_METHODS and isinstance(operation, dict)
    ]


def _header_ref(name: str) -> Json:
    return {"$ref": f"{_REF_PREFIX}headers/{name}"}


def _is_fastapi_validation_error(response: Json) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _FASTAPI_VALIDATION_REF)


def _document_responses(item: Json) -> None:
    """Every error is a problem+json with its status's headers; every response has its id."""
    for operation in _operations(item):
        responses: Json = operation.setdefault("responses", {})
        if "422" in responses and _is_fastapi_validation_error(responses["422"]):
            del responses["422"]
        for status, response in responses.items():
            headers = response.setdefault("headers", {})
            headers["X-Request-ID"] = _header_ref("X-Request-ID")
            if status[0] in "45" and set(response.get("content", {})) <= {PROBLEM_JSON}:
                ref = VALIDATION_PROBLEM_REF if status == "422" else PROBLEM_REF
                response["content"] = {PROBLEM_JSON: {"schema": {"$ref": ref}}}
                for name in STATUS_HEADERS.get(status, ()):
                    headers[name] = _header_ref(name)


def _name_inline_bodies(item: Json, schemas: Json) -> None:
    """A body schema declared inline (login's JSON and form) becomes a component named by
    its title, so generators name its class ``LoginRequest``, not ``LoginJsonLoginRequest``."""
    for operation in _operations(item):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            schema = media.get("schema", {})
            title = schema.get("title")
            if "$ref" in schema or not isinstance(title, str):
                continue
            if schemas.setdefault(title, schema) == schema:
                media["schema"] = {"$ref": f"{_REF_PREFIX}schemas/{title}"}


def _secure(path: str, item: Json) -> None:
    """Describe what the gateway enforces and answers, whatever the service declared."""
    for operation in _operations(item):
        responses = operation.setdefault("responses", {})
        for status, description in GATEWAY_ERRORS.items():
            responses.setdefault(status, {"description": description})
        if path in PUBLIC_PATHS:
            operation.pop("security", None)
            continue
        operation["security"] = [{BEARER_SCHEME: []}]
        responses.setdefault(
            "401", {"description": "Missing, invalid, expired or revoked access token"}
        )


def _drop_null_defaults(schemas: Json) -> None:
    """``default: null`` on a property that cannot be null (a PATCH field that may only be
    left out) promises a value the server refuses: generators would send it."""
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            if prop.get("default", ...) is None and not _allows_null(prop):
                del prop["default"]


def _allows_null(schema: Json) -> bool:
    if schema.get("type") == "null" or "null" in (schema.get("type") or []):
        return True
    return any(_allows_null(branch) for branch in schema.get("anyOf", []))


def _tags(paths: Json) -> list[Json]:
    """Every tag an operation uses, described, in TAG_DESCRIPTIONS' order."""
    used = {
        tag for item in paths.values() for op in _operations(item) for tag in op.get("tags", [])
    }
    order = list(TAG_DESCRIPTIONS)
    return [
        {"name": name, "description": TAG_DESCRIPTIONS[name]}
        if name in TAG_DESCRIPTIONS
        else {"name": name}
        for name in sorted(
            used, key=lambda tag: (order.index(tag) if tag in order else len(order), tag)
        )
    ]


def merge(own: Json, services: dict[str, Json]) -> Json:
    """The gateway's own document plus the client-facing part of each service's."""
    own_paths = copy.deepcopy(own.get("paths", {}))
    for item in own_paths.values():
        _document_responses(item)
    document: Json = {
        "openapi": own.get("openapi", "3.1.0"),
        "info": own.get("info", {"title": "Momentum API", "version": "1.0.0"}),
        "servers": SERVERS,
        "paths": own_paths,
    }
    components: dict[str, Json] = {
        section: dict(entries)
        for section, entries in own.get("components", {}).items()
        if section != "securitySchemes"
    }
    components.setdefault("schemas", {}).update(problem_schemas(_REF_PREFIX + "schemas/{model}"))
    components["headers"] = copy.deepcopy(HEADERS)

    for service, spec in services.items():
        paths = {
            path: copy.deepcopy(item)
            for path, item in spec.get("paths", {}).items()
            if service_for(path) == service
            and not has_dot_segment(path)
            and path not in document["paths"]
        }
        theirs: Json = copy.deepcopy(spec.get("components", {}))
        for item in paths.values():
            _document_responses(item)
            _name_inline_bodies(item, theirs.setdefault("schemas", {}))
        renames: dict[str, str] = {}
        needed = sorted(
            (section, name)
            for section, name in reachable_components(paths, theirs)
            if section != "securitySchemes" and name in theirs.get(section, {})
        )
        final_names: dict[tuple[str, str], str] = {}
        for section, name in needed:
            taken = components.get(section, {})
            ours = {other for sec, other in needed if sec == section and other != name}
            assigned = {final for (sec, _), final in final_names.items() if sec == section}
            final = name
            while (
                final in assigned
                or (final != name and final in ours)
                or (final in taken and taken[final] != theirs[section][name])
            ):
                final = service.capitalize() + final
            final_names[section, name] = final
            if final != name:
                renames[f"{_REF_PREFIX}{section}/{name}"] = f"{_REF_PREFIX}{section}/{final}"
        for (section, name), final in final_names.items():
            components.setdefault(section, {})[final] = _rewrite_refs(
                theirs[section][name], renames
            )
        for path, item in paths.items():
            rewritten = _rewrite_refs(item, renames)
            _secure(path, rewritten)
            _document_responses(rewritten)
            document["paths"][path] = rewritten

    _drop_null_defaults(components["schemas"])
    components["securitySchemes"] = {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from POST /auth/login",
        }
    }
    document["components"] = components
    document["tags"] = _tags(document["paths"])
    return document


def render(document: Json) -> str:
    """The document as committed in docs/openapi.json: sorted keys, so diffs stay small."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class OpenApiCache:
    """The merged document as bytes, rebuilt at most every ``cache_seconds``."""

    Own = Callable[[], Json]

    def __init__(
        self,
        services: dict[str, str],
        client: httpx.AsyncClient,
        own: Own,
        *,
        cache_seconds: float,
        timeout_s: float,
    ) -> None:
        self._services = services
        self._client = client
        self._own = own
        self._cache_seconds = cache_seconds
        self._timeout_s = timeout_s
        self._last_good: dict[str, Json] = {}
        self._document: bytes | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self, service: str, base_url: str) -> Json | None:
        try:
            response = await self._client.get(f"{base_url}/openapi.json", timeout=self._timeout_s)
            response.raise_for_status()
            spec = orjson.loads(response.content)
        except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
            log.warning("openapi_fetch_failed", upstream=service, error=type(exc).__name__)
            return None
        if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
            log.warning("openapi_fetch_failed", upstream=service, error="not an OpenAPI document")
            return None
        return spec

    async def _rebuild(self) -> None:
        names = list(self._services)
        results = await asyncio.gather(*(self._fetch(n, self._services[n]) for n in names))
        for name, spec in zip(names, results, strict=True):
            if spec is not None:
                self._last_good[name] = spec
        complete = all(spec is not None for spec in results)
        if len(self._last_good) < len(names):
            # Never fetched yet: nothing is cached, so the next request asks again.
            raise ProblemError(
                503,
                "The API description is not available yet: not every service has answered. "
                "Try again shortly.",
                headers={"Retry-After": "5"},
            )
        merged = merge(self._own(), {n: self._last_good[n] for n in names})
        self._document = orjson.dumps(merged)
        ttl = self._cache_seconds if complete else min(self._cache_seconds, RETRY_MISSING_S)
        self._expires_at = time.monotonic() + ttl

    async def document(self) -> bytes:
        """The merged document; :class:`ProblemError` 503 until every service answered once."""
        if self._document is None or time.monotonic() >= self._expires_at:
            async with self._lock:
                if self._document is None or time.monotonic() >= self._expires_at:
                    await self._rebuild()
        assert self._document is not None
        return self._document
