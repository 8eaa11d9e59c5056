"""Which service answers which path, and which paths need no access token (docs/api.md)."""

from typing import Final

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


def has_dot_segment(path: str) -> bool:
    """`/goals/../internal/x`: refused, so a prefix can never be walked out of."""
    if "/." not in path:
        return False
    return any(part in (".", "..") for part in path.split("/"))
