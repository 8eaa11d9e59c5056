"""The public keys, for the gateway and the services to verify access tokens (internal)."""

from typing import Any

from fastapi import APIRouter, Request, Response

from momentum_auth.state import app_state

router = APIRouter(tags=["internal"])


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys that verify access tokens (internal; not exposed by the gateway)",
)
async def jwks(request: Request, response: Response) -> dict[str, Any]:
    key = app_state(request)["signing_key"]
    response.headers["Cache-Control"] = "public, max-age=300"
    return key.jwks()
