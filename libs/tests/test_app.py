"""A tiny app from create_service_app: problem+json errors, request ids, health."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI, Request
from momentum_libs.app import create_service_app
from momentum_libs.problems import PROBLEM_JSON, PROBLEM_TYPE_BASE, ProblemError
from momentum_libs.request_id import accept_or_make
from momentum_libs.settings import ServiceSettings
from pydantic import BaseModel, Field

SECRET = "s3cr3t!"


class Signup(BaseModel):
    email: str
    password: str = Field(min_length=8)
    age: int


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def build_app() -> FastAPI:
    settings = ServiceSettings(log_json=True, log_level="INFO")
    app = create_service_app("libs-test", settings, lifespan, title="libs test")

    @app.post("/signup")
    async def signup(body: Signup) -> dict[str, str]:
        return {"email": body.email}

    @app.get("/items/{number}")
    async def item(number: int) -> dict[str, int]:
        return {"number": number}

    @app.get("/boom")
    async def boom() -> None:
        password = SECRET
        raise RuntimeError(f"internal detail {len(password)}")

    @app.get("/conflict")
    async def conflict() -> None:
        raise ProblemError(
            409,
            "The goal changed meanwhile.",
            type_slug="version-conflict",
            headers={"ETag": '"7"'},
            extra={"current_version": 7},
        )

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        bound = structlog.contextvars.get_contextvars()
        return {"state": request.state.request_id, "log": bound.get("request_id")}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: see what a client sees, as through a real server.
    transport = httpx.ASGITransport(build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM_TYPE_BASE)
    assert body["title"]
    assert body["detail"]
    return body


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_validation_error_is_422_problem_with_errors_and_no_input_echoed(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/signup", json={"email": "a@example.com", "password": SECRET, "age": "old"}
    )
    body = assert_problem(response, 422)
    assert body["type"] == PROBLEM_TYPE_BASE + "validation-error"
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "password"), ("body", "age")}
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])
    assert SECRET not in response.text
    assert "old" not in json.dumps(body["errors"])
    assert body["detail"].startswith("The request is not valid: body.")


async def test_malformed_json_is_422_problem_without_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/signup",
        content=b'{"password": "' + SECRET.encode() + b'",',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert body["errors"]
    assert SECRET not in response.text


async def test_bad_path_parameter_is_422_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/items/seven"), 422)
    assert body["errors"][0]["loc"] == ["path", "number"]


async def test_unknown_route_is_a_json_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/nowhere"), 404)
    assert body["type"] == PROBLEM_TYPE_BASE + "not-found"
    assert body["detail"] == "No resource at this path."


async def test_wrong_method_is_a_json_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    body = assert_problem(response, 405)
    assert body["detail"] == "This method is not allowed on this path."
    assert "GET" in response.headers["allow"]


async def test_problem_error_keeps_its_type_headers_and_extras(client: httpx.AsyncClient) -> None:
    response = await client.get("/conflict")
    body = assert_problem(response, 409)
    assert body["type"] == PROBLEM_TYPE_BASE + "version-conflict"
    assert body["current_version"] == 7
    assert response.headers["etag"] == '"7"'


async def test_unhandled_exception_is_a_500_problem_without_a_trace_but_with_the_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The app is built here, so its logging is configured onto the captured stderr.
    transport = httpx.ASGITransport(build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom", headers={"X-Request-ID": "trace-me-500"})
    body = assert_problem(response, 500)
    assert body["detail"] == "An unexpected error occurred. It has been logged."
    for leak in ("Traceback", "RuntimeError", SECRET, "internal detail"):
        assert leak not in response.text
    # The id a client reports for a 500 is the one in our log line with the trace.
    assert response.headers["x-request-id"] == "trace-me-500"
    logged = [
        json.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("{") and "unhandled_error" in line
    ]
    assert len(logged) == 1
    assert logged[0]["request_id"] == "trace-me-500"
    assert logged[0]["path"] == "/boom"
    assert "RuntimeError" in json.dumps(logged[0]["exception"])
    # The trace is logged without frame locals (they hold passwords and tokens).
    assert "locals" not in json.dumps(logged[0]["exception"])


@pytest.mark.parametrize("sane", ["abc-123", "0f8e1c2a.b:c_d", "x" * 128])
async def test_a_sane_request_id_is_echoed_and_bound(client: httpx.AsyncClient, sane: str) -> None:
    response = await client.get("/whoami", headers={"X-Request-ID": sane})
    assert response.headers["x-request-id"] == sane
    assert response.json() == {"state": sane, "log": sane}
    # Errors carry it too.
    assert (await client.get("/nowhere", headers={"X-Request-ID": sane})).headers[
        "x-request-id"
    ] == sane


@pytest.mark.parametrize(
    "junk",
    ["has space", "semi;colon", 'quote"d', "x" * 129, "caf\u00e9", "a/b", "<script>", ""],
    ids=["space", "semicolon", "quote", "too-long", "non-ascii", "slash", "html", "empty"],
)
async def test_a_junk_request_id_is_replaced(client: httpx.AsyncClient, junk: str) -> None:
    response = await client.get("/whoami", headers={b"X-Request-ID": junk.encode("latin-1")})
    made = response.headers["x-request-id"]
    assert made != junk
    assert len(made) == 32
    int(made, 16)
    assert response.json() == {"state": made, "log": made}


async def test_a_request_id_is_made_when_missing_and_each_request_gets_its_own(
    client: httpx.AsyncClient,
) -> None:
    first = (await client.get("/whoami")).headers["x-request-id"]
    second = (await client.get("/whoami")).headers["x-request-id"]
    assert first != second
    assert structlog.contextvars.get_contextvars().get("request_id") is None  # unbound after


@pytest.mark.parametrize("candidate", ["abc\n", "abc\r\nSet-Cookie: x=1", "\n", None])
def test_accept_or_make_refuses_line_breaks(candidate: str | None) -> None:
    made = accept_or_make(candidate)
    assert made != candidate
    assert "\n" not in made
    assert len(made) == 32


async def test_every_request_writes_one_access_line_with_its_id_and_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    transport = httpx.ASGITransport(build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/items/7?secret=query", headers={"X-Request-ID": "access-1"})
        await client.get("/nowhere", headers={"X-Request-ID": "access-2"})
    lines = [
        json.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("{") and '"event": "request"' in line
    ]
    by_id = {line["request_id"]: line for line in lines}
    assert by_id["access-1"]["status"] == 200
    assert by_id["access-1"]["path"] == "/items/7"
    assert by_id["access-1"]["method"] == "GET"
    assert by_id["access-1"]["duration_ms"] >= 0
    assert "secret=query" not in json.dumps(lines)
    assert by_id["access-2"]["status"] == 404
