"""/auth: register and me (served by the users service), login, refresh, logout."""

import json
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from momentum_libs.problems import problem_responses
from pydantic import BaseModel, ValidationError

from momentum_auth.deps import ClientAddress, CurrentUser, Tokens, Users
from momentum_auth.tokens.schemas import LoginForm, LoginRequest, RefreshRequest, TokenPair
from momentum_auth.users.schemas import UserCreate, UserRead

router = APIRouter(prefix="/auth", tags=["auth"])

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        ) from exc


async def login_credentials(request: Request) -> LoginRequest:
    """JSON ``{email, password}``, or the OAuth2 password form (``username``, ``password``)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _FORM_TYPES:
        form = await request.form()
        fields = {k: form.get(k) for k in ("username", "password") if k in form}
        parsed = _validate(LoginForm, fields)
        return LoginRequest(email=parsed.username, password=parsed.password)
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the limit
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "The body must be JSON or a form.", "type": "json_invalid"}]
        ) from exc
    return _validate(LoginRequest, body)


_LOGIN_BODY = {
    "requestBody": {
        # A body is needed (without one: 422), but declared optional: openapi-python-client
        # 0.29 generates code that does not import (`Unset`) for a required body with two
        # content types.
        "required": False,
        "description": "Required: JSON `{email, password}`, or the form `username`, `password`.",
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": LoginForm.model_json_schema()},
        },
    }
}


@router.post(
    "/register",
    operation_id="register",
    status_code=201,
    summary="Create an account",
    responses=problem_responses(409, 422),
)
async def register(body: UserCreate, users: Users) -> UserRead:
    return UserRead.from_document(await users.register(body))


@router.post(
    "/login",
    operation_id="login",
    summary="Sign in: a new session and its token pair",
    description=(
        "JSON `{email, password}` or the form `username`, `password`. A wrong email or "
        "password answers the same 401. Too many failures for one email or from one "
        "address answer 429 with `Retry-After`."
    ),
    openapi_extra=_LOGIN_BODY,
    responses=problem_responses(401, 422, 429, 503),
)
async def login(
    credentials: Annotated[LoginRequest, Depends(login_credentials)],
    tokens: Tokens,
    address: ClientAddress,
    response: Response,
) -> TokenPair:
    response.headers.update(_NO_STORE)
    return await tokens.login(credentials.normalized_email, credentials.password, address)


@router.post(
    "/refresh",
    operation_id="refresh",
    summary="Rotate a refresh token: a new pair; the old token is spent",
    description=(
        "A spent refresh token presented again within the grace (20 s) answers the same "
        "pair; after it, it revokes its whole session (401)."
    ),
    responses=problem_responses(401, 422, 503),
)
async def refresh(body: RefreshRequest, tokens: Tokens, response: Response) -> TokenPair:
    response.headers.update(_NO_STORE)
    return await tokens.refresh(body.refresh_token)


@router.post(
    "/logout",
    operation_id="logout",
    status_code=204,
    summary="End the session of this refresh token (its access tokens die at once)",
    responses=problem_responses(401, 422, 503),
)
async def logout(body: RefreshRequest, claims: CurrentUser, tokens: Tokens) -> Response:
    await tokens.logout(claims, body.refresh_token)
    return Response(status_code=204)


@router.get(
    "/me",
    operation_id="getSignedInUser",
    summary="The signed-in user",
    responses=problem_responses(401, 503),
)
async def me(claims: CurrentUser, users: Users) -> UserRead:
    return UserRead.from_document(await users.get(claims))
