"""FastAPI dependencies shared by the services: ``CurrentUser``."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from momentum_libs.problems import ProblemError
from momentum_libs.state import service_state
from momentum_libs.tokens import (
    AccessClaims,
    AccessTokenVerifier,
    TokenInvalidError,
    VerificationUnavailableError,
)

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /auth/login")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, detail, headers=_CHALLENGE)


async def verify_bearer(verifier: AccessTokenVerifier, authorization: str | None) -> AccessClaims:
    """Turn an ``Authorization`` header into claims, or the problem a client should see."""
    if not authorization:
        raise unauthorized("Missing bearer token.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("The Authorization header must be 'Bearer <access_token>'.")
    try:
        return await verifier.verify(token.strip())
    except TokenInvalidError as exc:
        raise unauthorized(f"Invalid access token: {exc}.") from exc
    except VerificationUnavailableError as exc:
        # Fail closed, but say it is us: a client's token may well be good.
        raise ProblemError(
            503,
            "Access tokens cannot be checked right now; try again shortly.",
            headers={"Retry-After": "5"},
        ) from exc


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims:
    verifier = service_state(request).token_verifier
    header = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
    return await verify_bearer(verifier, header or request.headers.get("authorization"))


CurrentUser = Annotated[AccessClaims, Depends(current_user)]
