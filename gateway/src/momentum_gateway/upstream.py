"""The proxy's upstream calls: aiohttp, one session (its own connection pool) per service.

Why not the shared httpx client: on every request httpcore's pool walks all of its
connections and polls each one's socket, and anyio wraps every socket operation. The
benchmark's profile put most of the gateway's CPU per proxied request there; aiohttp's
client (C parser, no per-request pool scan) does the same hop for about a third of the
CPU (bench/README.md, "Gateway"). httpx still serves the gateway's other calls (JWKS,
OpenAPI documents, health), which are rare.

A semaphore per service bounds its connections, so a full pool is told apart from a
slow connect: waiting longer than ``pool_timeout_seconds`` for a slot is 503 "at
capacity", whatever the other services are doing.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence

import aiohttp
import httpx
import structlog
from momentum_libs.problems import ProblemError
from yarl import URL

from momentum_gateway.settings import GatewaySettings

log = structlog.get_logger(__name__)


class PoolTimeoutError(Exception):
    """No connection to the service came free within ``pool_timeout_seconds``."""


class Opened:
    """An upstream response being relayed: headers in, body not yet read. :meth:`close`
    gives its connection back (and its pool slot)."""

    status: int
    headers: list[tuple[bytes, bytes]]

    def chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _AiohttpOpened(Opened):
    def __init__(self, response: aiohttp.ClientResponse, slots: asyncio.Semaphore) -> None:
        self.response = response
        self.status = response.status
        self.headers = list(response.raw_headers)
        self._slots = slots

    def chunks(self) -> AsyncIterator[bytes]:
        return self.response.content.iter_any()

    async def close(self) -> None:
        try:
            self.response.release()
        finally:
            self._slots.release()


class _HttpxOpened(Opened):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        self.headers = list(response.headers.raw)

    def chunks(self) -> AsyncIterator[bytes]:
        return self.response.aiter_raw()

    async def close(self) -> None:
        await self.response.aclose()


class Upstream:
    def __init__(
        self, base_url: str, settings: GatewaySettings, fallback: httpx.AsyncClient
    ) -> None:
        self.base = base_url.rstrip("/")
        self.fallback = fallback
        self.fallback_base = httpx.URL(base_url)
        self.pool_timeout_s = settings.pool_timeout_seconds
        self.connect_timeout_s = settings.connect_timeout_seconds
        self.slots = asyncio.Semaphore(settings.max_connections)
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            limit_per_host=0,
            keepalive_timeout=settings.keepalive_expiry_seconds,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=settings.connect_timeout_seconds,
                sock_read=settings.read_timeout_seconds,
            ),
            # The client's own headers go through as they are: add none of aiohttp's.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            auto_decompress=False,
            # Shared by every user's requests: it must never keep a cookie.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )

    async def open(
        self,
        method: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        read_timeout_s: float | None = None,
    ) -> Opened:
        """Send the request; the response's headers are in, its body not yet read.
        ``read_timeout_s``: this request's, in place of the session's."""
        if method == "CONNECT":
            # aiohttp turns CONNECT into a tunnel request (authority-form target); the
            # services answer it 405 like any method they lack, so it goes over httpx.
            return await self._open_httpx(method, target, headers, body)
        try:
            await asyncio.wait_for(self.slots.acquire(), self.pool_timeout_s)
        except TimeoutError:
            raise PoolTimeoutError() from None
        try:
            response = await self.session.request(
                method,
                URL(self.base + target.decode("latin-1"), encoded=True),
                headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers],
                data=body or None,
                allow_redirects=False,
                timeout=self.session.timeout
                if read_timeout_s is None
                else self._timeout(read_timeout_s),
            )
        except BaseException:
            self.slots.release()
            raise
        return _AiohttpOpened(response, self.slots)

    def _timeout(self, read_timeout_s: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout_s, sock_read=read_timeout_s
        )

    async def _open_httpx(
        self, method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> Opened:
        base = self.fallback_base
        request = httpx.Request(
            method,
            base.copy_with(raw_path=base.raw_path.rstrip(b"/") + target),
            headers=list(headers),
            content=body,
            extensions={"timeout": self.fallback.timeout.as_dict()},
        )
        return _HttpxOpened(await self.fallback.send(request, stream=True))

    async def close(self) -> None:
        await self.session.close()


def open_upstreams(
    urls: dict[str, str], settings: GatewaySettings, fallback: httpx.AsyncClient
) -> dict[str, Upstream]:
    return {name: Upstream(url, settings, fallback) for name, url in urls.items()}


def upstream_problem(service: str, exc: BaseException) -> ProblemError:
    """Map a transport failure to what the client should see. No host names leak."""
    if isinstance(exc, PoolTimeoutError | httpx.PoolTimeout):
        status, detail = 503, "The gateway is at capacity; try again shortly."
    elif isinstance(exc, TimeoutError | httpx.TimeoutException):  # aiohttp's are TimeoutErrors
        status, detail = 504, "The service behind this path did not answer in time."
    elif isinstance(exc, aiohttp.ClientConnectorError | httpx.ConnectError):
        status, detail = 503, "The service behind this path is unavailable; try again shortly."
    else:
        status, detail = 502, "The service behind this path sent a broken response."
    log.warning("upstream_failed", upstream=service, error=type(exc).__name__, status=status)
    headers = {"Retry-After": "5"} if status == 503 else None
    return ProblemError(status, detail, headers=headers)
