"""Which service answers which path, and which paths need no access token (docs/api.md)."""

from typing import Final

from starlette.types import Scope

AUTH: Final = "auth"
TRACKING: Final = "tracking"
ANALYTICS: Final = "analytics"
SERVICES: Final = (AUTH, TRACKING, ANALYTICS)

# First path segment → service. `/goals`, `/goals/…` route; `/goalsx` does not.
PREFIXES: Final[dict[str, str]] = {
    "auth": AUTH,
    "users": AUTH,
    "goals": TRACKING,
    "weekly-targets": TRACKING,
    "daily-logs": TRACKING,
    "breaks": TRACKING,
    "changes": TRACKING,
    "batch": TRACKING,
    "exports": TRACKING,
    "imports": TRACKING,
    "analytics": ANALYTICS,
}

# Proxied paths a client may call without a bearer token.
PUBLIC_PATHS: Final = frozenset({"/auth/register", "/auth/login", "/auth/refresh"})


def first_segment(path: str) -> str:
    end = path.find("/", 1)
    return path[1:] if end == -1 else path[1:end]


def service_for(path: str) -> str | None:
    """The service behind a public path, or None (not ours to proxy)."""
    return PREFIXES.get(first_segment(path))


# A proxied request's route label: its prefix, never its raw path (bounded, no ids).
_ROUTES: Final[dict[str, tuple[str, str]]] = {
    segment: (f"/{segment}", f"/{segment}/{{path}}") for segment in PREFIXES
}


def proxied_route(scope: Scope) -> str | None:
    """``/goals`` or ``/goals/{path}`` for a proxied path; None for the gateway's own."""
    path: str = scope["path"]
    routes = _ROUTES.get(first_segment(path))
    if routes is None:
        return None
    return routes[0] if len(path) == len(routes[0]) else routes[1]


def has_dot_segment(path: str) -> bool:
    """`/goals/../internal/x`: refused, so a prefix can never be walked out of."""
    if "/." not in path:
        return False
    return any(part in (".", "..") for part in path.split("/"))
