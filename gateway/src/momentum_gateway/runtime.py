"""What the gateway holds while it runs: upstream pools, httpx, Redis, MongoDB, the verifier.

Everything is made in the lifespan (inside the server's event loop) and closed there.
"""

from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from momentum_libs.mongo import mongo_client
from momentum_libs.redis_client import RedisClient, redis_client
from momentum_libs.tokens import AccessTokenVerifier, JwksKeys, SessionRevocations
from pymongo import AsyncMongoClient

from momentum_gateway.client_limits import ClientLimits
from momentum_gateway.openapi import OpenApiCache
from momentum_gateway.settings import GatewaySettings
from momentum_gateway.upstream import Upstream, open_upstreams


def _no_cookies() -> httpx.Cookies:
    # The client is shared by every user's requests: it must never keep a cookie.
    return httpx.Cookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])))


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"{parsed.scheme}://{parsed.host}:{port}"


def make_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """The gateway's httpx client: JWKS, health checks, OpenAPI fetches and the
    ``CONNECT`` fallback of the proxy (proxied requests go over aiohttp, upstream.py).

    One connection pool per service (httpx mounts), so a service that hangs cannot take
    the connections the checks of the others need.
    """
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
        keepalive_expiry=settings.keepalive_expiry_seconds,
    )
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        _origin(url): httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
        for url in settings.upstream_urls.values()
    }
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.read_timeout_seconds,
            write=settings.write_timeout_seconds,
            pool=settings.pool_timeout_seconds,
        ),
        limits=limits,
        mounts=mounts,
        cookies=_no_cookies(),
        follow_redirects=False,
        trust_env=False,
    )
    # Proxied requests carry the client's own headers; add none of httpx's defaults.
    for name in ("accept", "accept-encoding", "user-agent", "connection"):
        client.headers.pop(name, None)
    return client


@dataclass
class Runtime:
    settings: GatewaySettings
    client: httpx.AsyncClient
    redis: RedisClient
    sessions_redis: RedisClient
    mongo: AsyncMongoClient[dict[str, Any]]
    verifier: AccessTokenVerifier
    openapi: OpenApiCache
    upstreams: dict[str, Upstream]
    client_limits: ClientLimits

    @classmethod
    def open(cls, settings: GatewaySettings, own_openapi: OpenApiCache.Own) -> "Runtime":
        client = make_client(settings)
        redis = redis_client(settings.redis_url, settings.store_timeout_ms)
        sessions_redis = redis
        if settings.sessions_redis_url:
            sessions_redis = redis_client(settings.sessions_redis_url, settings.store_timeout_ms)
        revocations = SessionRevocations(
            sessions_redis, keep_seconds=settings.revoked_session_ttl_seconds
        )
        keys = JwksKeys(settings.jwks_url, client, cache_seconds=settings.jwks_cache_seconds)
        verifier = AccessTokenVerifier(
            keys, settings.jwt_issuer, settings.jwt_audience, revocations
        )
        upstream_urls = settings.upstream_urls
        openapi = OpenApiCache(
            upstream_urls,
            client,
            own_openapi,
            cache_seconds=settings.openapi_cache_seconds,
            timeout_s=settings.openapi_fetch_timeout_seconds,
        )
        return cls(
            settings=settings,
            client=client,
            redis=redis,
            sessions_redis=sessions_redis,
            mongo=mongo_client(
                settings.mongodb_url, settings.store_timeout_ms, settings.mongo_audit_file
            ),
            verifier=verifier,
            openapi=openapi,
            upstreams=open_upstreams(upstream_urls, settings, client),
            client_limits=ClientLimits(settings, redis),
        )

    async def close(self) -> None:
        for upstream in self.upstreams.values():
            await upstream.close()
        await self.client.aclose()
        await self.redis.aclose()
        if self.sessions_redis is not self.redis:
            await self.sessions_redis.aclose()
        await self.mongo.close()


class RuntimeRef:
    """Filled by the lifespan; read by the pure-ASGI proxy on every request."""

    def __init__(self) -> None:
        self.current: Runtime | None = None
