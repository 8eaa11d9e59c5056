"""Refresh-token grace: a rotated token presented again soon after answers the same pair."""

import asyncio
import hashlib

import httpx
from pymongo import MongoClient

from .conftest import SettingsFactory, assert_problem, bearer, new_account, running


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_a_retry_within_the_grace_answers_the_same_pair(client: httpx.AsyncClient) -> None:
    acc = await new_account(client)
    first = await refresh(client, acc.refresh_token)
    assert first.status_code == 200, first.text
    again = await refresh(client, acc.refresh_token)  # the first response was lost
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    # The session lives on: the pair works, and its refresh token rotates on.
    pair = first.json()
    assert (await client.get("/auth/me", headers=bearer(pair["access_token"]))).status_code == 200
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_concurrent_presentations_within_the_grace_all_get_one_pair(
    client: httpx.AsyncClient,
) -> None:
    acc = await new_account(client)
    answers = await asyncio.gather(*(refresh(client, acc.refresh_token) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    pairs = {a.text for a in answers}
    assert len(pairs) == 1, pairs
    pair = answers[0].json()
    assert (await client.get("/auth/me", headers=bearer(pair["access_token"]))).status_code == 200
    # Exactly one new refresh token exists for the session: the losers' were removed.
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_after_the_grace_a_reuse_is_theft(make_settings: SettingsFactory) -> None:
    async with running(make_settings(refresh_reuse_grace_seconds=1)) as (_, client):
        acc = await new_account(client)
        first = await refresh(client, acc.refresh_token)
        assert first.status_code == 200, first.text
        await asyncio.sleep(1.2)  # past the grace (not a timing assertion: the rule is "after")
        assert_problem(await refresh(client, acc.refresh_token), 401)
        pair = first.json()
        assert_problem(await client.get("/auth/me", headers=bearer(pair["access_token"])), 401)
        assert_problem(await refresh(client, pair["refresh_token"]), 401)


async def test_the_stored_successor_holds_no_usable_token(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with running(settings) as (_, client):
        acc = await new_account(client)
        pair = (await refresh(client, acc.refresh_token)).json()
        with MongoClient(settings.mongodb_url) as mongo:
            docs = list(mongo[settings.mongodb_db]["refresh_tokens"].find())
        stored = repr(docs).encode()
        for secret in (acc.refresh_token, pair["refresh_token"], pair["access_token"]):
            assert secret.encode() not in stored
        spent = next(
            d for d in docs if d["_id"] == hashlib.sha256(acc.refresh_token.encode()).hexdigest()
        )
        assert spent["spent"] and spent["successor"]  # nx-27017 gives a bool back as 1
        # Another token cannot unseal it: a forged or foreign token is refused as before.
        assert_problem(await refresh(client, pair["refresh_token"] + "x"), 401)


async def test_a_logged_out_session_gets_nothing_within_the_grace(
    client: httpx.AsyncClient,
) -> None:
    acc = await new_account(client)
    pair = (await refresh(client, acc.refresh_token)).json()
    out = await client.post(
        "/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers=bearer(pair["access_token"]),
    )
    assert out.status_code == 204, out.text
    assert_problem(await refresh(client, acc.refresh_token), 401)
