"""ConditionalGetMiddleware and If-Match parsing on a small app of their own."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Response
from momentum_libs.conditional import ConditionalGetMiddleware, IfMatch, body_etag


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.add_middleware(ConditionalGetMiddleware)

    @app.get("/computed")
    async def computed() -> dict[str, int]:
        return {"answer": 42}

    @app.get("/tagged")
    async def tagged(response: Response) -> dict[str, str]:
        response.headers["ETag"] = '"doc.7"'
        response.headers["Cache-Control"] = "private"
        return {"id": "doc"}

    @app.get("/missing", status_code=404)
    async def missing() -> dict[str, str]:
        return {"detail": "none"}

    @app.post("/made", status_code=201)
    async def made() -> dict[str, str]:
        return {"id": "new"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_a_computed_body_is_tagged_by_its_hash_and_revalidates(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/computed")
    assert first.headers["ETag"] == body_etag(first.content)
    again = await client.get("/computed", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert "content-length" not in again.headers or again.headers["content-length"] == "0"
    assert "content-type" not in again.headers


async def test_a_route_tag_is_kept_and_a_304_keeps_its_cache_fields(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/tagged")
    assert first.headers["ETag"] == '"doc.7"' and first.json() == {"id": "doc"}
    again = await client.get("/tagged", headers={"If-None-Match": 'W/"doc.7"'})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == '"doc.7"' and again.headers["Cache-Control"] == "private"
    other = await client.get("/tagged", headers={"If-None-Match": '"doc.6"'})
    assert other.status_code == 200 and other.json() == {"id": "doc"}


async def test_errors_and_writes_are_left_alone(client: httpx.AsyncClient) -> None:
    missing = await client.get("/missing", headers={"If-None-Match": "*"})
    assert missing.status_code == 404 and "etag" not in missing.headers
    made = await client.post("/made", headers={"If-None-Match": "*"})
    assert made.status_code == 201 and "etag" not in made.headers


def test_if_match_compares_strongly() -> None:
    assert IfMatch('"a", "b"').matches('"b"')
    assert IfMatch("*").matches('"anything"')
    assert not IfMatch('W/"b"').matches('"b"')
    assert not IfMatch('"a"').matches('"b"')
