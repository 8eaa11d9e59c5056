"""/users/me: the signed-in user's profile."""

from fastapi import APIRouter, Response
from momentum_libs.problems import problem_responses

from momentum_auth.deps import ClientAddress, CurrentUser, Users
from momentum_auth.users.schemas import UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get(
    "/me",
    operation_id="getMe",
    summary="The signed-in user",
    responses=problem_responses(401, 503),
)
async def read_me(claims: CurrentUser, users: Users) -> UserRead:
    return UserRead.from_document(await users.get(claims))


@router.patch(
    "/me",
    operation_id="updateMe",
    summary="Change the profile or the password",
    description=(
        "Only the given fields change; `display_name: null` clears the name. Changing the "
        "password needs `current_password` (wrong: 400 `…/wrong-password`) and ends every "
        "other session of the user."
    ),
    responses=problem_responses(400, 401, 409, 422, 429, 503),
)
async def update_me(
    claims: CurrentUser, users: Users, body: UserUpdate, address: ClientAddress
) -> UserRead:
    return UserRead.from_document(await users.update(claims, body, address))


@router.delete(
    "/me",
    operation_id="deleteMe",
    status_code=204,
    summary="Delete the account and all its data",
    description="Ends every session at once and frees the email; other services erase "
    "their part on the `user.deleted` event.",
    responses=problem_responses(401, 409, 503),
)
async def delete_me(claims: CurrentUser, users: Users) -> Response:
    await users.delete(claims)
    return Response(status_code=204)
