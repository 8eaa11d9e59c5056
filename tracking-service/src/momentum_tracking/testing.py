"""Test helpers for this service's tests (importable, unlike a conftest)."""

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from momentum_libs.testing.tokens import TestSigner


class Api:
    """An httpx client on the in-process app, with one user's token unless told otherwise."""

    def __init__(self, client: httpx.AsyncClient, signer: TestSigner, app: FastAPI) -> None:
        self.client = client
        self.signer = signer
        self.app = app

    def user(self) -> dict[str, str]:
        """Headers of a brand-new user."""
        return {"Authorization": f"Bearer {self.signer.mint(uuid.uuid4().hex)}"}

    async def goal(self, headers: dict[str, str], title: str = "Learn Go") -> dict[str, Any]:
        r = await self.client.post("/goals", json={"title": title}, headers=headers)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body
