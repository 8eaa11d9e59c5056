"""Test helpers for this service's tests (importable, unlike a conftest; not shipped)."""

import uuid
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from momentum_libs.events import Envelope, EventType
from momentum_libs.testing.tokens import TestSigner
from momentum_libs.testing.waiting import eventually
from redis.asyncio import Redis

T = TypeVar("T")


class Api:
    """An httpx client on the in-process app, with tokens from a test signer."""

    def __init__(self, client: httpx.AsyncClient, signer: TestSigner, app: FastAPI) -> None:
        self.client = client
        self.signer = signer
        self.app = app

    def user(self, user_id: str | None = None) -> dict[str, str]:
        """Headers of a user (a brand-new one unless ``user_id`` is given)."""
        return {"Authorization": f"Bearer {self.signer.mint(user_id or uuid.uuid4().hex)}"}

    async def created(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        """POST ``body`` to ``path``, asserting a 201; the created resource."""
        r = await self.client.post(path, json=body, headers=headers)
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        return created

    async def goal(self, headers: dict[str, str], title: str = "Learn Go") -> dict[str, Any]:
        return await self.created("/goals", {"title": title}, headers)

    async def log(
        self, headers: dict[str, str], goal_id: str, day: str = "2026-11-20", minutes: int = 30
    ) -> dict[str, Any]:
        body = {"goal_id": goal_id, "date": day, "minutes": minutes}
        return await self.created("/daily-logs", body, headers)

    async def target(
        self, headers: dict[str, str], goal_id: str, week: str = "2026-11-16", minutes: int = 300
    ) -> dict[str, Any]:
        body = {"goal_id": goal_id, "week_start": week, "target_minutes": minutes}
        return await self.created("/weekly-targets", body, headers)

    async def walk(
        self, path: str, headers: dict[str, str], limit: int, **params: Any
    ) -> list[dict[str, Any]]:
        """Every item of a list, page by page."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
            r = await self.client.get(path, params=query, headers=headers)
            assert r.status_code == 200, r.text
            items += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return items


async def pending_events() -> int:
    """Events written to the outbox and not yet published (all outbox collections)."""
    from momentum_tracking.main import OUTBOX_MODELS

    total = 0
    for model in OUTBOX_MODELS:
        total += await model.get_pymongo_collection().count_documents({"outbox_pending": True})
    return total


async def drained(timeout_s: float = 20.0) -> bool:
    """Wait until the relay has published every pending event; True if it has."""
    return await eventually(pending_events, lambda n: n == 0, timeout_s=timeout_s) == 0


async def stream_events(redis: Redis, stream: str) -> list[Envelope]:
    entries: Any = await redis.xrange(stream)
    return [Envelope.from_stream_fields(dict(fields)) for _id, fields in entries or []]


def of_type(events: list[Envelope], type_: EventType, user_id: str | None = None) -> list[Envelope]:
    return [e for e in events if e.type is type_ and user_id in (None, e.user_id)]
