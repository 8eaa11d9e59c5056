"""MongoDB down: a clean 503 problem, /health/db names it, and service resumes when it is back."""

import asyncio

from momentum_libs.testing.plugin import OwnMongo

from .conftest import (
    PASSWORD,
    SettingsFactory,
    assert_problem,
    login,
    register,
    running,
    unique_email,
)


async def test_mongodb_down_is_503_and_recovers(
    make_settings: SettingsFactory, own_mongo: OwnMongo
) -> None:
    settings = make_settings(mongodb_url=own_mongo.url, store_timeout_ms=1500)
    async with running(settings) as (_, client):
        user = await register(client)
        own_mongo.stop()
        response = await client.post(
            "/auth/register", json={"email": unique_email(), "password": PASSWORD}
        )
        problem = assert_problem(response, 503)
        assert "127.0.0.1" not in problem["detail"]
        assert response.headers["Retry-After"]
        health = await client.get("/health/db")
        assert health.status_code == 503
        assert health.json()["mongodb"] == "down"
        own_mongo.start()
        # The driver finds the server again at its next heartbeat: wait for that (a bound
        # on waiting, not an assertion on speed), then the service must serve again.
        for _ in range(150):
            if (await client.get("/health/db")).status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert (await client.get("/health/db")).status_code == 200
        assert (await login(client, user["email"]))["access_token"]
