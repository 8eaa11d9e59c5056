"""Fixtures: stand-in upstream services (HTTP surface only) and gateways on free ports.

The stand-ins are small FastAPI apps run by uvicorn in threads; the gateway runs the
same way, with real Redis (``redis_url``) and the embedded MongoDB (``mongodb_url``).
"""

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from momentum_gateway.main import create_app
from momentum_gateway.settings import GatewaySettings
from momentum_libs.stores import free_port
from momentum_libs.testing.tokens import TestSigner
from pydantic import BaseModel, ConfigDict, create_model

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
STREAM_CHUNKS = [f"chunk-{i};".encode() * 100 for i in range(5)]
SLOW_S = 5.0
IMPORT_S = 1.0  # an import's merge, past the read timeout of the test that sets 0.3 s


class ServerThread:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread of its own."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            server_header=False,
            # As in devstack for the gateway: a client's X-Forwarded-For is not trusted.
            proxy_headers=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


# -- stand-in services -----------------------------------------------------------------


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str
    password: str


class TokenPair(BaseModel):
    access_token: str
    token_type: str = "bearer"


class User(BaseModel):
    id: str
    email: str


class Item(BaseModel):
    """Two services define an `Item` differently: the merge must keep both."""

    id: str
    title: str


class ItemList(BaseModel):
    items: list[Item]
    next_cursor: str | None = None


class AnalyticsItem(BaseModel):
    day: str
    minutes: int


class Streak(BaseModel):
    current_streak: int
    recent: list[AnalyticsItem]


# Analytics' own `Item`, unlike tracking's: the merge must keep both.
ANALYTICS_ITEM = create_model("Item", day=(str, ...), total=(int, ...))


class InternalOnly(BaseModel):
    secret_field: str


class Upstream:
    """One stand-in service: a few documented routes, internal ones, and an echo."""

    def __init__(self, name: str, signer: TestSigner | None = None) -> None:
        self.name = name
        self.hits: Counter[str] = Counter()
        self.healthy = True
        self.app = self._build(signer)
        self.server = ServerThread(self.app)

    @property
    def url(self) -> str:
        return self.server.url

    def _build(self, signer: TestSigner | None) -> FastAPI:
        app = FastAPI(title=f"stand-in {self.name}")
        name = self.name
        hits = self.hits

        @app.get("/health")
        async def health() -> JSONResponse:
            if not self.healthy:
                return JSONResponse({"status": "sick"}, status_code=503)
            return JSONResponse({"status": "ok"})

        @app.post("/internal/users/{user_id}/erase", tags=["internal"])
        async def erase(user_id: str) -> InternalOnly:
            return InternalOnly(secret_field=user_id)

        if signer is not None:

            @app.get("/.well-known/jwks.json")
            async def jwks() -> dict[str, Any]:
                hits["jwks"] += 1
                return signer.jwks

        if name == "auth":

            @app.post("/auth/login", tags=["auth"])
            async def login(body: Credentials) -> TokenPair:
                return TokenPair(access_token="opaque")

            @app.get("/users/me", tags=["users"])
            async def me() -> User:
                return User(id="u1", email="a@example.com")

        elif name == "tracking":

            @app.get("/goals", tags=["goals"])
            async def goals() -> ItemList:
                return ItemList(items=[Item(id="g1", title="Run")])

            @app.get("/goals/slow", include_in_schema=False)
            async def slow() -> dict[str, str]:
                hits["slow"] += 1
                await asyncio.sleep(SLOW_S)
                return {"late": "yes"}

            @app.post("/imports", include_in_schema=False)
            async def slow_import() -> dict[str, str]:
                await asyncio.sleep(IMPORT_S)
                return {"merged": "yes"}

            @app.get("/goals/stream", include_in_schema=False)
            async def stream() -> StreamingResponse:
                async def chunks() -> AsyncIterator[bytes]:
                    for chunk in STREAM_CHUNKS:
                        yield chunk
                        await asyncio.sleep(0.01)

                return StreamingResponse(chunks(), media_type="text/plain")

            @app.get("/goals/broken-stream", include_in_schema=False)
            async def broken_stream() -> StreamingResponse:
                async def chunks() -> AsyncIterator[bytes]:
                    yield STREAM_CHUNKS[0]
                    await asyncio.sleep(0.05)
                    raise RuntimeError("the stand-in dies mid-body")

                return StreamingResponse(chunks(), media_type="text/plain")

            @app.get("/goals/leaky", include_in_schema=False)
            async def leaky() -> Response:
                return JSONResponse(
                    {"ok": True},
                    headers={"Server": "leaky/1.0", "X-Upstream": "yes", "Retry-After": "7"},
                )

        elif name == "analytics":

            @app.get("/analytics/streak", tags=["analytics"])
            async def streak() -> Streak:
                return Streak(current_streak=1, recent=[])

            @app.get(
                "/analytics/items/{item_id}", tags=["analytics"], response_model=ANALYTICS_ITEM
            )
            async def item(item_id: str) -> dict[str, Any]:
                return {"day": item_id, "total": 1}

        @app.api_route("/{path:path}", methods=ALL_METHODS, include_in_schema=False)
        async def echo(request: Request) -> JSONResponse:
            hits["echo"] += 1
            body = await request.body()
            return JSONResponse(
                {
                    "service": name,
                    "method": request.method,
                    "path": request.url.path,
                    "raw_path": request.scope["raw_path"].decode(),
                    "query": request.url.query,
                    "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
                    "body_len": len(body),
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                    "client": request.client.host if request.client else None,
                    "client_port": request.client.port if request.client else None,
                }
            )

        return app


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


def header_values(echo: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k.lower() == name.lower()]


# -- tokens ----------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def unsigned_token(signer: TestSigner) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": signer.kid}
    payload = claims_of(signer.mint())
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}."


def hs256_with_public_key(signer: TestSigner) -> str:
    """The classic confusion attack: HMAC keyed with the verifier's public key."""
    header = {"alg": "HS256", "typ": "JWT", "kid": signer.kid}
    payload = claims_of(signer.mint())
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    public_pem = signer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture(scope="session")
def upstreams(signer: TestSigner) -> Iterator[dict[str, Upstream]]:
    services = {
        "auth": Upstream("auth", signer),
        "tracking": Upstream("tracking"),
        "analytics": Upstream("analytics"),
    }
    started: list[Upstream] = []
    try:
        for upstream in services.values():
            upstream.server.start()
            started.append(upstream)
        yield services
    finally:
        for upstream in started:
            upstream.server.stop()


def gateway_settings(
    upstreams: dict[str, Upstream], stores: tuple[str, str], **overrides: Any
) -> GatewaySettings:
    redis_url, mongodb_url = stores
    values: dict[str, Any] = {
        "auth_url": upstreams["auth"].url,
        "tracking_url": upstreams["tracking"].url,
        "analytics_url": upstreams["analytics"].url,
        "jwks_url": f"{upstreams['auth'].url}/.well-known/jwks.json",
        "redis_url": redis_url,
        "mongodb_url": mongodb_url,
        # Bounds, not speeds: the gateway, its stand-ins and the test client share one
        # process beside make test's workers, where a stall of a second is ordinary; the
        # tests of a timeout set their own (dead stores and stopped stand-ins refuse at once).
        "read_timeout_seconds": 10.0,
        "connect_timeout_seconds": 5.0,
        "store_timeout_ms": 2000,
        "health_timeout_seconds": 5.0,
        "openapi_fetch_timeout_seconds": 5.0,
        "log_json": False,
        "log_level": "WARNING",
        "metrics_port": 0,  # tests run side by side: never the fixed 9100
    }
    values.update(overrides)
    return GatewaySettings(**values)


@pytest.fixture(scope="session")
def gateway_url(upstreams: dict[str, Upstream], redis_url: str, mongodb_url: str) -> Iterator[str]:
    server = ServerThread(create_app(gateway_settings(upstreams, (redis_url, mongodb_url))))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def gw(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=15) as client:
        yield client


StartGateway = Callable[..., httpx.Client]


@pytest.fixture
def start_gateway(
    upstreams: dict[str, Upstream], redis_url: str, mongodb_url: str
) -> Iterator[StartGateway]:
    """A gateway of its own for one test, with some settings changed."""
    servers: list[ServerThread] = []
    clients: list[httpx.Client] = []

    def start(**overrides: Any) -> httpx.Client:
        settings = gateway_settings(upstreams, (redis_url, mongodb_url), **overrides)
        server = ServerThread(create_app(settings)).start()
        servers.append(server)
        client = httpx.Client(base_url=server.url, timeout=15)
        clients.append(client)
        return client

    try:
        yield start
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.stop()


@pytest.fixture
def spare_upstream() -> Iterator[Callable[[str], Upstream]]:
    """A stand-in service of a test's own, which it may break or stop."""
    started: list[Upstream] = []

    def start(name: str) -> Upstream:
        upstream = Upstream(name)
        upstream.server.start()
        started.append(upstream)
        return upstream

    try:
        yield start
    finally:
        for upstream in started:
            upstream.server.stop()


@pytest.fixture
def dead_url() -> str:
    """An address where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


class GarbageServer:
    """Accepts connections and answers with bytes that are not HTTP."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(65536)
                    conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def garbage_server() -> Iterator[GarbageServer]:
    server = GarbageServer()
    try:
        yield server
    finally:
        server.close()
