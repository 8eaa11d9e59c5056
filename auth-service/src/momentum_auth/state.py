"""The typed lifespan state: built once per process, read by dependencies."""

from typing import Any, TypedDict

from fastapi import Request
from momentum_libs.relay import OutboxRelay
from momentum_libs.tokens import AccessTokenVerifier
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from momentum_auth.keys.service import SigningKey
from momentum_auth.settings import AuthSettings
from momentum_auth.tokens.service import TokenService
from momentum_auth.users.service import UserService


class State(TypedDict):
    """Yielded by the lifespan (``request.state``) and kept as ``app.state.auth``."""

    settings: AuthSettings
    mongo: AsyncMongoClient[dict[str, Any]]
    redis: Redis
    signing_key: SigningKey
    token_verifier: AccessTokenVerifier
    relay: OutboxRelay
    users: UserService
    tokens: TokenService


def app_state(request: Request) -> State:
    """The state of this app (also when served without Starlette's lifespan, e.g. tests)."""
    state: State = request.app.state.auth
    return state
