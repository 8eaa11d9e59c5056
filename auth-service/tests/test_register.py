"""POST /auth/register: the user it returns, uniqueness, validation, how passwords are kept."""

import json
import re

import httpx
from momentum_auth.settings import AuthSettings
from pymongo import MongoClient

from .conftest import PASSWORD, SettingsFactory, assert_problem, register, running, unique_email

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


async def test_register_returns_the_user_and_no_secret(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await client.post(
        "/auth/register",
        json={
            "email": email.upper(),
            "password": PASSWORD,
            "display_name": "Ada",
            "timezone": "Europe/Berlin",
        },
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == {
        "id",
        "email",
        "display_name",
        "timezone",
        "rest_weekdays",
        "day_start",
        "daily_goal_minutes",
        "created_at",
        "updated_at",
    }
    assert (user["rest_weekdays"], user["day_start"], user["daily_goal_minutes"]) == (
        [],
        "00:00",
        1,
    )
    assert user["email"] == email
    assert user["display_name"] == "Ada"
    assert user["timezone"] == "Europe/Berlin"
    assert RFC3339_UTC.match(user["created_at"]), user["created_at"]
    assert PASSWORD not in response.text
    assert "argon2" not in response.text


async def test_timezone_defaults_to_utc_and_display_name_is_optional(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    assert user["timezone"] == "UTC"
    assert user["display_name"] is None


async def test_duplicate_email_is_409_whatever_the_case(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email=email)
    for variant in (email, email.upper(), email.capitalize()):
        response = await client.post(
            "/auth/register", json={"email": variant, "password": PASSWORD}
        )
        assert_problem(response, 409)


async def test_validation_errors_are_422_with_errors_and_no_echo(
    client: httpx.AsyncClient,
) -> None:
    cases = [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": unique_email(), "password": "short12"}, "password"),
        ({"email": unique_email(), "password": "x" * 129}, "password"),
        ({"email": unique_email(), "password": PASSWORD, "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": unique_email(), "password": PASSWORD, "is_admin": True}, "is_admin"),
        ({"password": PASSWORD}, "email"),
        ({"email": unique_email(), "password": PASSWORD, "display_name": ""}, "display_name"),
    ]
    for body, field in cases:
        response = await client.post("/auth/register", json=body)
        problem = assert_problem(response, 422)
        assert problem["type"].endswith("/validation-error")
        assert any(err["loc"][-1] == field for err in problem["errors"]), (body, problem)
        assert PASSWORD not in json.dumps(problem)
        assert "x" * 129 not in json.dumps(problem)


async def test_password_8_and_128_chars_are_accepted(client: httpx.AsyncClient) -> None:
    await register(client, password="12345678")
    await register(client, password="y" * 128)


async def test_only_an_argon2id_hash_is_stored(make_settings: SettingsFactory) -> None:
    settings: AuthSettings = make_settings()
    async with running(settings) as (_, client):
        user = await register(client)
    with MongoClient(settings.mongodb_url) as mongo:
        stored = mongo[settings.mongodb_db]["users"].find_one({"email": user["email"]})
    assert stored is not None
    assert stored["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in json.dumps(stored, default=str)
