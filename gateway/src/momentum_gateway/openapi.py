"""One OpenAPI document, merged at run time from the services' own ``/openapi.json``.

Only the paths a client can reach through the gateway are kept (a service's
``/internal/*``, ``/.well-known/*`` and ``/health`` are not), with just the
components they reference. A component name two services define differently is
renamed (``TrackingItem``) and its references rewritten. Each operation's security
says what the gateway enforces. The document is cached; a service that cannot be
reached contributes its last good document, or nothing, and is asked again soon.
"""

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import structlog
from momentum_libs.problems import PROBLEM_RESPONSE_SCHEMA

from momentum_gateway.routing import PUBLIC_PATHS, has_dot_segment, service_for

log = structlog.get_logger(__name__)

BEARER_SCHEME = "bearerAuth"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
RETRY_MISSING_S = 5.0
_REF_PREFIX = "#/components/"

Json = dict[str, Any]


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


def _unauthorized_response() -> Json:
    return {"description": "Missing, invalid, expired or revoked access token"} | copy.deepcopy(
        PROBLEM_RESPONSE_SCHEMA
    )


def _secure(path: str, item: Json) -> None:
    """Describe what the gateway enforces, whatever the service declared."""
    for method, operation in item.items():
        if method not in HTTP_METHODS or not isinstance(operation, dict):
            continue
        if path in PUBLIC_PATHS:
            operation.pop("security", None)
            continue
        operation["security"] = [{BEARER_SCHEME: []}]
        operation.setdefault("responses", {}).setdefault("401", _unauthorized_response())


def merge(own: Json, services: dict[str, Json]) -> Json:
    """The gateway's own document plus the client-facing part of each service's."""
    document: Json = {
        "openapi": own.get("openapi", "3.1.0"),
        "info": own.get("info", {"title": "Momentum API", "version": "1.0.0"}),
        "paths": dict(own.get("paths", {})),
    }
    components: dict[str, Json] = {
        section: dict(entries)
        for section, entries in own.get("components", {}).items()
        if section != "securitySchemes"
    }
    tags: list[Json] = list(own.get("tags", []))
    tag_names = {tag.get("name") for tag in tags}

    for service, spec in services.items():
        paths = {
            path: item
            for path, item in spec.get("paths", {}).items()
            if service_for(path) == service
            and not has_dot_segment(path)
            and path not in document["paths"]
        }
        theirs: Json = spec.get("components", {})
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
            document["paths"][path] = rewritten
        for tag in spec.get("tags", []):
            if tag.get("name") not in tag_names:
                tags.append(tag)
                tag_names.add(tag.get("name"))

    components["securitySchemes"] = {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from POST /auth/login",
        }
    }
    document["components"] = components
    if tags:
        document["tags"] = tags
    return document


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
        merged = merge(self._own(), {n: self._last_good[n] for n in names if n in self._last_good})
        self._document = orjson.dumps(merged)
        ttl = self._cache_seconds if complete else min(self._cache_seconds, RETRY_MISSING_S)
        self._expires_at = time.monotonic() + ttl

    async def document(self) -> bytes:
        if self._document is None or time.monotonic() >= self._expires_at:
            async with self._lock:
                if self._document is None or time.monotonic() >= self._expires_at:
                    await self._rebuild()
        assert self._document is not None
        return self._document
