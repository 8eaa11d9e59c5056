"""The few API calls the bench needs, at the gateway (docs/api.md), with bench users."""

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
PASSWORD = "bench-password-1"  # a throwaway account in a throwaway stack


class ApiError(RuntimeError):
    pass


def _check(response: httpx.Response, *expected: int) -> Any:
    if response.status_code not in expected:
        raise ApiError(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json() if response.content else None


@dataclass
class User:
    email: str
    id: str = ""
    access_token: str = ""
    expires_at: float = 0.0
    goal_ids: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def register(self, label: str) -> User:
        user = User(email=f"{label}-{uuid.uuid4().hex[:10]}@bench.example.com")
        body = {"email": user.email, "password": PASSWORD, "display_name": label}
        created = _check(await self.client.post("/auth/register", json=body), 201)
        user.id = created["id"]
        await self.login(user)
        return user

    async def login(self, user: User) -> None:
        body = {"email": user.email, "password": PASSWORD}
        tokens = _check(await self.client.post("/auth/login", json=body), 200)
        user.access_token = tokens["access_token"]
        user.expires_at = time.monotonic() + float(tokens.get("expires_in", 300))

    async def fresh(self, user: User, min_left_s: float = 120.0) -> str:
        """The user's access token, logged in again when it expires within min_left_s."""
        if user.expires_at - time.monotonic() < min_left_s:
            await self.login(user)
        return user.access_token

    async def create_goal(self, user: User, title: str = "Bench goal") -> str:
        goal = _check(
            await self.client.post("/goals", json={"title": title}, headers=user.headers), 201
        )
        user.goal_ids.append(goal["id"])
        return str(goal["id"])

    async def post_log(self, user: User, goal_id: str, day: dt.date, minutes: int) -> None:
        body = {"goal_id": goal_id, "date": day.isoformat(), "minutes": minutes}
        _check(await self.client.post("/daily-logs", json=body, headers=user.headers), 201)

    async def streak(self, user: User) -> dict[str, Any]:
        result: dict[str, Any] = _check(
            await self.client.get("/analytics/streak", headers=user.headers), 200
        )
        return result

    async def dashboard(self, user: User) -> dict[str, Any]:
        result: dict[str, Any] = _check(
            await self.client.get("/analytics/dashboard", headers=user.headers), 200
        )
        return result


async def bounded(limit: int, jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs with at most ``limit`` in flight."""
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
