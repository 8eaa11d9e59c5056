"""/users/me: read, partial update, password change, deletion — and their events."""

import asyncio

import httpx
from momentum_libs.events import EventType
from momentum_libs.testing.waiting import eventually
from pymongo import MongoClient

from .conftest import (
    PASSWORD,
    SettingsFactory,
    assert_problem,
    bearer,
    login,
    new_account,
    register,
    running,
)
from .events import events_of

NEW_PASSWORD = "a brand new password"


async def test_read_me(client: httpx.AsyncClient) -> None:
    acc = await new_account(client, display_name="Ada", timezone="Asia/Tokyo")
    response = await client.get("/users/me", headers=acc.headers)
    assert response.status_code == 200
    assert response.json() == acc.user
    assert_problem(await client.get("/users/me"), 401)


async def test_patch_changes_only_the_given_fields(client: httpx.AsyncClient) -> None:
    acc = await new_account(client, display_name="Before", timezone="Europe/Berlin")
    response = await client.patch(
        "/users/me", json={"timezone": "Pacific/Kiritimati"}, headers=acc.headers
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["timezone"] == "Pacific/Kiritimati"
    assert changed["display_name"] == "Before"
    assert changed["created_at"] == acc.user["created_at"]
    cleared = await client.patch("/users/me", json={"display_name": None}, headers=acc.headers)
    assert cleared.json()["display_name"] is None
    assert cleared.json()["timezone"] == "Pacific/Kiritimati"
    again = await client.get("/users/me", headers=acc.headers)
    assert again.json() == cleared.json()
    unchanged = await client.patch("/users/me", json={}, headers=acc.headers)
    assert unchanged.json() == cleared.json()


async def test_patch_validation(client: httpx.AsyncClient) -> None:
    acc = await new_account(client)
    for body, field in (
        ({"timezone": "Nowhere/Else"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"email": "x@example.com"}, "email"),
        ({"password": "short", "current_password": PASSWORD}, "password"),
        ({"password": None}, "password"),
        ({"display_name": "x" * 101}, "display_name"),
    ):
        problem = assert_problem(
            await client.patch("/users/me", json=body, headers=acc.headers), 422
        )
        assert any(err["loc"][-1] == field for err in problem["errors"]), (body, problem)
    # A new password without the current one.
    assert_problem(
        await client.patch("/users/me", json={"password": NEW_PASSWORD}, headers=acc.headers), 422
    )


async def test_password_change_needs_the_current_one_and_ends_other_sessions(
    client: httpx.AsyncClient,
) -> None:
    acc = await new_account(client)
    other = await login(client, acc.email)
    wrong = await client.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "current_password": "not it at all"},
        headers=acc.headers,
    )
    assert assert_problem(wrong, 400)["type"].endswith("/wrong-password")
    # Nothing changed: the other session still works, the old password still logs in.
    assert (await client.get("/users/me", headers=bearer(other["access_token"]))).status_code == 200
    ok = await client.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=acc.headers,
    )
    assert ok.status_code == 200, ok.text
    assert PASSWORD not in ok.text and NEW_PASSWORD not in ok.text
    # This session lives on, access and refresh.
    assert (await client.get("/users/me", headers=acc.headers)).status_code == 200
    assert (
        await client.post("/auth/refresh", json={"refresh_token": acc.refresh_token})
    ).status_code == 200
    # Every other session ended at once.
    assert_problem(await client.get("/users/me", headers=bearer(other["access_token"])), 401)
    assert_problem(
        await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}), 401
    )
    wrong_old = await client.post("/auth/login", json={"email": acc.email, "password": PASSWORD})
    assert_problem(wrong_old, 401)
    assert (await login(client, acc.email, NEW_PASSWORD))["access_token"]


async def test_delete_erases_the_account_and_frees_the_email(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    async with running(settings) as (_, client):
        acc = await new_account(client)
        other = await login(client, acc.email)
        response = await client.delete("/users/me", headers=acc.headers)
        assert response.status_code == 204, response.text
        for token in (acc.access_token, other["access_token"]):
            assert_problem(await client.get("/users/me", headers=bearer(token)), 401)
        for token in (acc.refresh_token, other["refresh_token"]):
            refreshed = await client.post("/auth/refresh", json={"refresh_token": token})
            assert_problem(refreshed, 401)
        assert_problem(
            await client.post("/auth/login", json={"email": acc.email, "password": PASSWORD}),
            401,
        )
        again = await register(client, email=acc.email.upper())
        assert again["id"] != acc.user["id"]
        assert again["email"] == acc.email
        deleted = await events_of(settings, acc.user["id"], EventType.USER_DELETED)
        assert len(deleted) == 1
        # Once its event is out, nothing of the account is left in our database: the relay
        # deletes the tombstone after publishing it, so wait for that (while it runs).
        with MongoClient(settings.mongodb_url) as mongo:
            db = mongo[settings.mongodb_db]

            async def left() -> tuple[int, int, int]:
                return (
                    db["users"].count_documents({"_id": {"$exists": True}}),
                    db["sessions"].count_documents({"user_id": acc.user["id"]}),
                    db["refresh_tokens"].count_documents({"user_id": acc.user["id"]}),
                )

            # The new account alone, and no session or refresh token of the erased one.
            assert await eventually(left, lambda counts: counts == (1, 0, 0)) == (1, 0, 0)


async def test_registration_and_updates_publish_events_with_the_timezone(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    async with running(settings) as (_, client):
        acc = await new_account(client, timezone="America/Sao_Paulo")
        [registered] = await events_of(settings, acc.user["id"], EventType.USER_REGISTERED)
        assert registered.typed_payload().timezone == "America/Sao_Paulo"
        await client.patch("/users/me", json={"timezone": "Asia/Kolkata"}, headers=acc.headers)
        await client.patch("/users/me", json={"display_name": "Ada"}, headers=acc.headers)
        updated = await events_of(settings, acc.user["id"], EventType.USER_UPDATED, count=2)
        assert [e.typed_payload().timezone for e in updated] == ["Asia/Kolkata", "Asia/Kolkata"]
        # A password change alone tells other services nothing.
        await client.patch(
            "/users/me",
            json={"password": NEW_PASSWORD, "current_password": PASSWORD},
            headers=acc.headers,
        )
        await asyncio.sleep(0.5)
        assert len(await events_of(settings, acc.user["id"], EventType.USER_UPDATED, 3, 0)) == 2


async def test_two_password_changes_racing_with_the_same_current_password_one_wins(
    client: httpx.AsyncClient,
) -> None:
    acc = await new_account(client)
    other = await login(client, acc.email)
    first, second = "the first new password", "the second new password"
    responses = await asyncio.gather(
        *(
            client.patch(
                "/users/me",
                json={"password": new, "current_password": PASSWORD},
                headers=bearer(token),
            )
            for new, token in ((first, acc.access_token), (second, other["access_token"]))
        )
    )
    statuses = sorted(r.status_code for r in responses)
    # The loser's current password is no longer current (400), or its session already
    # ended with the winner's change (401): never two changes, the later one silently winning.
    assert statuses[0] == 200 and statuses[1] in (400, 401), statuses
    winner = first if responses[0].status_code == 200 else second
    loser = second if winner == first else first
    assert (await login(client, acc.email, winner))["access_token"]
    assert_problem(
        await client.post("/auth/login", json={"email": acc.email, "password": loser}), 401
    )
