"""All database access for sessions (one per login) and their refresh tokens."""

from datetime import datetime

from momentum_libs.clock import utcnow
from momentum_libs.expiry import Expiries
from momentum_libs.ids import parse_object_id
from pymongo import IndexModel

from momentum_auth.tokens.models import RefreshToken, Session

SESSION_TTL_INDEX = "refreshed_at_ttl"
# A session outlives its newest refresh token by this much: clocks of the service and of
# MongoDB may differ, and a session must never go before its last token.
SESSION_TTL_MARGIN_S = 3600


async def ensure_session_expiry(expiries: Expiries, refresh_token_ttl_seconds: int) -> None:
    """The TTL index that drops a session after its newest refresh token expired (and a
    start for the sessions stored without one).

    Its lifetime is a setting, so it is kept here rather than in the model: a changed
    setting changes the existing index instead of failing start-up."""
    collection = Session.get_pymongo_collection()
    # Sessions from before refreshed_at existed: from now on, they expire like the rest.
    await collection.update_many({"refreshed_at": None}, {"$currentDate": {"refreshed_at": True}})
    seconds = refresh_token_ttl_seconds + SESSION_TTL_MARGIN_S
    await expiries.create(
        collection,
        IndexModel([("refreshed_at", 1)], name=SESSION_TTL_INDEX, expireAfterSeconds=seconds),
    )


class TokenRepository:
    async def create_session(self, user_id: str) -> Session:
        now = utcnow()
        session = Session(user_id=user_id, created_at=now, refreshed_at=now)
        await session.insert()
        return session

    async def get_session(self, user_id: str, session_id: str) -> Session | None:
        oid = parse_object_id(session_id)
        if oid is None:
            return None
        return await Session.find_one({"_id": oid, "user_id": user_id})

    async def session_ids_of(self, user_id: str) -> list[str]:
        sessions = await Session.find({"user_id": user_id}).to_list()
        return [str(s.id) for s in sessions if not s.revoked]

    async def revoke_sessions(self, user_id: str, session_ids: list[str]) -> None:
        ids = [oid for oid in map(parse_object_id, session_ids) if oid is not None]
        if not ids:
            return
        await Session.get_pymongo_collection().update_many(
            {"_id": {"$in": ids}, "user_id": user_id},
            {"$set": {"revoked": True, "revoked_at": utcnow()}},
        )

    async def add_refresh_token(
        self, token_hash: str, session: Session, expires_at: datetime
    ) -> None:
        token = RefreshToken(
            id=token_hash,
            session_id=str(session.id),
            user_id=session.user_id,
            created_at=utcnow(),
            expires_at=expires_at,
        )
        await token.insert()
        # $currentDate, not $set of our datetime: nx-27017 stores a $set datetime as a
        # string, which a TTL index ignores.
        await Session.get_pymongo_collection().update_one(
            {"_id": session.id, "user_id": session.user_id},
            {"$currentDate": {"refreshed_at": True}},
        )

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        return await RefreshToken.get(token_hash)

    async def spend_refresh_token(self, token_hash: str, successor: bytes, now_ms: int) -> bool:
        """Mark it spent, with the (encrypted) pair it rotated into, in one conditional
        write; False if it already was spent (by a concurrent or an earlier refresh)."""
        result = await RefreshToken.get_pymongo_collection().update_one(
            {"_id": token_hash, "spent": False},
            {"$set": {"spent": True, "spent_at_ms": now_ms, "successor": successor}},
        )
        return result.matched_count == 1

    async def delete_refresh_token(self, token_hash: str) -> None:
        await RefreshToken.get_pymongo_collection().delete_one({"_id": token_hash})

    async def erase_user(self, user_id: str) -> None:
        await RefreshToken.get_pymongo_collection().delete_many({"user_id": user_id})
        await Session.get_pymongo_collection().delete_many({"user_id": user_id})
