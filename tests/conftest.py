"""Cross-service tests: the whole stack (session fixture ``stack``), driven through the gateway."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from momentum_libs.devstack import Stack
from momentum_libs.testing.plugin import STACK_REFRESH_GRACE_S

PASSWORD = "correct horse battery"


@pytest.fixture
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=15) as client:
        yield client


@dataclass
class Account:
    email: str
    password: str
    user: dict[str, object]
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def past_refresh_grace() -> None:
    """Wait until a refresh token rotated just now is past the stack's grace: presented
    again, it is theft (within the grace it answers the same pair)."""
    time.sleep(STACK_REFRESH_GRACE_S + 0.2)


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def register(client: httpx.Client, **fields: object) -> dict[str, object]:
    body = {"email": unique_email(), "password": PASSWORD, **fields}
    response = client.post("/auth/register", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def new_account(client: httpx.Client, **fields: object) -> Account:
    user = register(client, **fields)
    email = str(user["email"])
    tokens = login(client, email)
    return Account(email, PASSWORD, user, tokens["access_token"], tokens["refresh_token"])


@pytest.fixture
def account(gateway: httpx.Client) -> Account:
    return new_account(gateway)


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert body["detail"]
    return body
