"""/users/me: the signed-in user's profile."""

from fastapi import APIRouter, Response
from momentum_libs.problems import problem_responses

from momentum_auth.deps import ClientAddress, CurrentUser, Users
from momentum_auth.users.schemas import TodayRead, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get(
    "/me",
    operation_id="getMe",
    summary="The signed-in user",
    responses=problem_responses(401, 503),
)
async def read_me(claims: CurrentUser, users: Users) -> UserRead:
    return UserRead.from_document(await users.get(claims))


@router.get(
    "/me/today",
    operation_id="getMyToday",
    summary="The user's local today, as the server computes it",
    description=(
        "The date it is for the user now, by their `timezone` and `day_start`, and the two "
        "instants (UTC) their day runs between: 23 or 25 hours on a DST day. A `day_start` "
        "a spring-forward gap hides begins the day at the first instant after the gap; one "
        "that happens twice, at the first. After a settings change that would move today "
        "back (a later `day_start`, a timezone further west), today stays the date it was "
        "until the new settings reach it."
    ),
    responses=problem_responses(401, 503),
)
async def read_my_today(claims: CurrentUser, users: Users) -> TodayRead:
    user, day = await users.today(claims)
    return TodayRead.of(user, day)


@router.patch(
    "/me",
    operation_id="updateMe",
    summary="Change the profile or the password",
    description=(
        "Only the given fields change; `display_name: null` clears the name. Changing the "
        "password needs `current_password` (wrong: 400 `…/wrong-password`) and ends every "
        "other session of the user. `timezone`, `rest_weekdays`, `day_start` and "
        "`daily_goal_minutes` take effect from the user's local today on; past days keep "
        "the settings they had."
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
