"""FastAPI dependencies of auth-service, as ``Annotated`` aliases over its state."""

from typing import Annotated

from fastapi import Depends, Request
from momentum_libs.deps import CurrentUser

from momentum_auth.keys.service import SigningKey
from momentum_auth.state import auth_state
from momentum_auth.tokens.service import TokenService
from momentum_auth.users.service import UserService


async def _users(request: Request) -> UserService:
    return auth_state(request).users


async def _tokens(request: Request) -> TokenService:
    return auth_state(request).tokens


async def _signing_key(request: Request) -> SigningKey:
    return auth_state(request).signing_key


async def client_address(request: Request) -> str:
    """The client's address: the gateway's X-Forwarded-For (first entry), else the peer."""
    if auth_state(request).settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return request.client.host if request.client else "unknown"


Users = Annotated[UserService, Depends(_users)]
Tokens = Annotated[TokenService, Depends(_tokens)]
Keys = Annotated[SigningKey, Depends(_signing_key)]
ClientAddress = Annotated[str, Depends(client_address)]

__all__ = ["ClientAddress", "CurrentUser", "Keys", "Tokens", "Users"]
