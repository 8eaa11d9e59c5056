"""All database access for sessions and refresh tokens."""

from datetime import datetime

from beanie import PydanticObjectId
from bson.errors import InvalidId

from momentum_auth.clock import utcnow
from momentum_auth.sessions.models import RefreshToken, Session


def _object_ids(session_ids: list[str]) -> list[PydanticObjectId]:
    ids = []
    for sid in session_ids:
        try:
            ids.append(PydanticObjectId(sid))
        except (InvalidId, TypeError):
            continue
    return ids


class SessionRepository:
    async def create_session(self, user_id: str) -> Session:
        session = Session(user_id=user_id, created_at=utcnow())
        await session.insert()
        return session

    async def get_session(self, session_id: str) -> Session | None:
        ids = _object_ids([session_id])
        return await Session.get(ids[0]) if ids else None

    async def session_ids_of(self, user_id: str) -> list[str]:
        sessions = await Session.find({"user_id": user_id}).to_list()
        return [str(s.id) for s in sessions if not s.revoked]

    async def revoke_sessions(self, session_ids: list[str]) -> None:
        ids = _object_ids(session_ids)
        if not ids:
            return
        await Session.get_pymongo_collection().update_many(
            {"_id": {"$in": ids}}, {"$set": {"revoked": True, "revoked_at": utcnow()}}
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

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        return await RefreshToken.get(token_hash)

    async def spend_refresh_token(self, token_hash: str) -> bool:
        """Mark it spent; False if it already was (two presentations: one is a thief)."""
        result = await RefreshToken.get_pymongo_collection().update_one(
            {"_id": token_hash, "spent": False}, {"$set": {"spent": True}}
        )
        return result.matched_count == 1

    async def erase_user(self, user_id: str) -> None:
        await RefreshToken.get_pymongo_collection().delete_many({"user_id": user_id})
        await Session.get_pymongo_collection().delete_many({"user_id": user_id})
