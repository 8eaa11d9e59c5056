from beanie import Document
from momentum_libs.timestamps import UtcDatetime
from pymongo import IndexModel


class Session(Document):
    """One login: every refresh token rotated from it, and the access tokens they minted
    (``sid``). Revoking it ends all of them.

    ``refreshed_at`` is when its newest refresh token was issued: MongoDB drops the
    session a refresh token's lifetime after it (TTL index, see the repository), when
    nothing of it can be used any more (an access token lives at most 1 h, a refresh
    token at least 1 h)."""

    user_id: str
    created_at: UtcDatetime
    refreshed_at: UtcDatetime | None = None
    revoked: bool = False
    revoked_at: UtcDatetime | None = None

    class Settings:
        name = "sessions"
        indexes = [IndexModel([("user_id", 1)], name="user_id")]


class RefreshToken(Document):
    """A refresh token, stored only as the SHA-256 hex of the token (its ``_id``).

    Spending it is one conditional write on ``spent: False`` that also stores the pair it
    was rotated into (``successor``), encrypted with a key derived from the token itself:
    only a holder of the old token can read it back, so nothing at rest gives a usable
    token. Presented again within the grace (``spent_at_ms`` + the setting), it answers
    that same pair; later, it was stolen, and its session is revoked."""

    id: str  # type: ignore[assignment]
    session_id: str
    user_id: str
    spent: bool = False
    # Epoch milliseconds, not a datetime: nx-27017 stores a $set datetime as a string.
    spent_at_ms: int | None = None
    successor: bytes | None = None
    created_at: UtcDatetime
    expires_at: UtcDatetime

    class Settings:
        name = "refresh_tokens"
        indexes = [
            IndexModel([("user_id", 1)], name="user_id"),
            # Spent tokens are kept (reuse detection) until they expire; then MongoDB drops them.
            IndexModel([("expires_at", 1)], name="expires_at_ttl", expireAfterSeconds=0),
        ]
