"""The public keys, for the gateway and the services to verify access tokens (internal)."""

from typing import Any

from fastapi import APIRouter, Response

from momentum_auth.deps import Keys

router = APIRouter(tags=["internal"])


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys that verify access tokens (internal; not exposed by the gateway)",
)
async def jwks(key: Keys, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return key.jwks()
