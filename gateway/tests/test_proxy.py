"""Routing, streaming, header hygiene, request ids, body limits and upstream failures."""

import hashlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from momentum_libs.testing.tokens import TestSigner

from .conftest import (
    STREAM_CHUNKS,
    GarbageServer,
    StartGateway,
    Upstream,
    assert_problem,
    bearer,
    header_values,
)

MIB = 1024 * 1024


@pytest.fixture
def auth(signer: TestSigner) -> dict[str, str]:
    return bearer(signer.mint())


@pytest.mark.parametrize(
    ("method", "path", "service"),
    [
        ("GET", "/auth/me", "auth"),
        ("POST", "/auth/logout", "auth"),
        ("PATCH", "/users/me", "auth"),
        ("GET", "/goals/abc", "tracking"),
        ("DELETE", "/goals/abc", "tracking"),
        ("POST", "/weekly-targets", "tracking"),
        ("GET", "/weekly-targets/w1", "tracking"),
        ("GET", "/daily-logs", "tracking"),
        ("PATCH", "/daily-logs/d1", "tracking"),
        ("GET", "/analytics/dashboard", "analytics"),
        ("GET", "/analytics/heatmap", "analytics"),
    ],
)
def test_each_prefix_reaches_its_service(
    gw: httpx.Client, auth: dict[str, str], method: str, path: str, service: str
) -> None:
    response = gw.request(method, path, headers=auth, params={"limit": "5", "x": "a b"})
    assert response.status_code == 200, response.text
    echo = response.json()
    assert echo["service"] == service
    assert echo["method"] == method
    assert echo["path"] == path
    assert echo["query"] == "limit=5&x=a+b"


def test_body_and_query_arrive_intact(gw: httpx.Client, auth: dict[str, str]) -> None:
    body = b'{"goal_id": "g1", "minutes": 30, "note": "\xc3\xa9t\xc3\xa9"}'
    response = gw.post(
        "/daily-logs",
        content=body,
        headers={**auth, "Content-Type": "application/json", "Idempotency-Key": "k-1"},
    )
    echo = response.json()
    assert echo["body_len"] == len(body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert header_values(echo, "idempotency-key") == ["k-1"]
    assert header_values(echo, "content-type") == ["application/json"]


def test_encoded_path_is_forwarded_as_sent(gw: httpx.Client, auth: dict[str, str]) -> None:
    echo = gw.get("/goals/a%2Fb%20c", headers=auth).json()
    assert echo["raw_path"] == "/goals/a%2Fb%20c"


def test_response_is_streamed_through_whole(gw: httpx.Client, auth: dict[str, str]) -> None:
    with gw.stream("GET", "/goals/stream", headers=auth) as response:
        assert response.status_code == 200
        received = b"".join(response.iter_bytes())
    assert received == b"".join(STREAM_CHUNKS)


def test_upstream_dying_mid_body_is_not_passed_off_as_whole(
    gw: httpx.Client, auth: dict[str, str]
) -> None:
    with gw.stream("GET", "/goals/broken-stream", headers=auth) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()
    # The gateway itself is fine afterwards.
    assert gw.get("/goals/x", headers=auth).status_code == 200


def test_upstream_headers_pass_but_not_its_server(gw: httpx.Client, auth: dict[str, str]) -> None:
    response = gw.get("/goals/leaky", headers=auth)
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "yes"
    assert response.headers["retry-after"] == "7"
    assert "server" not in response.headers
    assert len(response.headers.get_list("date")) <= 1


def test_unknown_paths_are_json_404(gw: httpx.Client, auth: dict[str, str]) -> None:
    for path in ("/nope", "/", "/goalsx", "/internal/users/u1/erase", "/.well-known/jwks.json"):
        body = assert_problem(gw.get(path, headers=auth), 404)
        assert body["detail"] == "No resource at this path."


def raw_request(base_url: str, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send a request target exactly as written (httpx would normalise dot segments)."""
    url = httpx.URL(base_url)
    lines = [f"GET {target} HTTP/1.1", f"Host: {url.host}:{url.port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((str(url.host), int(url.port or 80)), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_dot_segments_cannot_walk_out_of_a_prefix(
    gateway_url: str, auth: dict[str, str], upstreams: dict[str, Upstream]
) -> None:
    before = upstreams["tracking"].hits["echo"]
    for target in ("/goals/../internal/users/u1/erase", "/goals/%2E%2E/internal/x", "/goals/./x"):
        status, body = raw_request(gateway_url, target, auth)
        assert status == 404, (target, body)
        assert b"No resource at this path." in body
    assert upstreams["tracking"].hits["echo"] == before
    status, _ = raw_request(gateway_url, "/goals/x", auth)
    assert status == 200
    assert upstreams["tracking"].hits["echo"] == before + 1


def test_identity_headers_from_the_client_are_stripped(
    gw: httpx.Client, auth: dict[str, str]
) -> None:
    spoofed = {
        **auth,
        "X-User-Id": "someone-else",
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Host": "evil.example",
        "X-Real-IP": "6.6.6.6",
        "Forwarded": "for=6.6.6.6",
        "X-Momentum-User": "admin",
        "X-Momentum-Internal": "1",
    }
    echo = gw.get("/goals/x", headers=spoofed).json()
    names = {k.lower() for k, _ in echo["headers"]}
    assert "x-user-id" not in names
    assert "x-real-ip" not in names
    assert "forwarded" not in names
    assert "x-forwarded-host" not in names
    assert not any(name.startswith("x-momentum-") for name in names)
    # The gateway says who the client really is; the token is passed on for re-verification.
    assert header_values(echo, "x-forwarded-for") == ["127.0.0.1"]
    assert header_values(echo, "authorization") == [auth["Authorization"]]


def test_the_clients_traceparent_is_continued_upstream(
    gw: httpx.Client, auth: dict[str, str]
) -> None:
    client_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    echo = gw.get("/goals/x", headers={**auth, "traceparent": client_parent}).json()
    assert header_values(echo, "traceparent") == [client_parent]


@pytest.mark.parametrize("incoming", [None, "00-garbage-01"])
def test_without_a_valid_traceparent_the_gateway_starts_a_trace_per_request(
    gw: httpx.Client, auth: dict[str, str], incoming: str | None
) -> None:
    headers = {**auth, **({"traceparent": incoming} if incoming else {})}
    sent = [
        header_values(gw.get("/goals/x", headers=headers).json(), "traceparent") for _ in range(2)
    ]
    assert all(len(values) == 1 for values in sent)
    (first,), (second,) = sent
    assert first != incoming
    assert first.startswith("00-") and first.endswith("-00")  # started, not sampled
    assert first.split("-")[1] != second.split("-")[1]


def test_hop_by_hop_headers_are_not_forwarded(gw: httpx.Client, auth: dict[str, str]) -> None:
    headers = {**auth, "Connection": "keep-alive, X-Hop-Secret", "X-Hop-Secret": "1", "TE": "x"}
    echo = gw.get("/goals/x", headers=headers).json()
    names = {k.lower() for k, _ in echo["headers"]}
    assert "x-hop-secret" not in names
    assert "te" not in names
    assert header_values(echo, "host") == [echo_host(echo)]


def echo_host(echo: dict[str, object]) -> str:
    hosts = header_values(echo, "host")
    assert len(hosts) == 1
    assert hosts[0].startswith("127.0.0.1:")
    return hosts[0]


def test_request_id_is_echoed_and_forwarded(gw: httpx.Client, auth: dict[str, str]) -> None:
    response = gw.get("/goals/x", headers={**auth, "X-Request-ID": "client-id-123"})
    assert response.headers["x-request-id"] == "client-id-123"
    assert header_values(response.json(), "x-request-id") == ["client-id-123"]


def test_request_id_is_made_when_missing_or_unsafe(gw: httpx.Client, auth: dict[str, str]) -> None:
    for sent in (None, "has spaces and ;"):
        headers = dict(auth) if sent is None else {**auth, "X-Request-ID": sent}
        response = gw.get("/goals/x", headers=headers)
        made = response.headers["x-request-id"]
        assert made and made != sent
        assert header_values(response.json(), "x-request-id") == [made]
    # Errors the gateway answers itself carry one too.
    assert gw.get("/nope").headers["x-request-id"]
    assert gw.get("/goals").headers["x-request-id"]


def test_body_at_the_limit_passes(gw: httpx.Client, auth: dict[str, str]) -> None:
    response = gw.post("/goals", content=b"x" * MIB, headers=auth)
    assert response.status_code == 200
    assert response.json()["body_len"] == MIB


def test_body_over_the_limit_is_413(gw: httpx.Client, auth: dict[str, str]) -> None:
    assert_problem(gw.post("/goals", content=b"x" * (MIB + 1), headers=auth), 413)


def test_chunked_body_over_the_limit_is_413(gw: httpx.Client, auth: dict[str, str]) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 65536

    response = gw.post("/goals", content=chunks(), headers=auth)
    assert_problem(response, 413)


def test_small_limit_is_a_setting(start_gateway: StartGateway, auth: dict[str, str]) -> None:
    client = start_gateway(max_body_bytes=10)
    assert_problem(client.post("/goals", content=b"x" * 11, headers=auth), 413)
    assert client.post("/goals", content=b"x" * 10, headers=auth).status_code == 200


def test_upstream_down_is_503(
    start_gateway: StartGateway, auth: dict[str, str], dead_url: str
) -> None:
    client = start_gateway(tracking_url=dead_url)
    response = client.get("/goals", headers=auth)
    body = assert_problem(response, 503)
    assert response.headers["retry-after"]
    assert "127.0.0.1" not in str(body)
    # The other services are still reachable.
    assert client.get("/analytics/streak", headers=auth).status_code == 200


def test_slow_upstream_is_504(start_gateway: StartGateway, auth: dict[str, str]) -> None:
    client = start_gateway(read_timeout_seconds=0.3)
    body = assert_problem(client.get("/goals/slow", headers=auth), 504)
    assert "Traceback" not in str(body)


def test_an_import_may_take_longer_than_any_other_request(
    start_gateway: StartGateway, auth: dict[str, str]
) -> None:
    client = start_gateway(read_timeout_seconds=0.3, import_read_timeout_seconds=5)
    response = client.post("/imports", content=b"{}", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"merged": "yes"}
    assert_problem(client.get("/goals/slow", headers=auth), 504)  # only POST /imports
    short = start_gateway(read_timeout_seconds=0.3, import_read_timeout_seconds=0.5)
    assert_problem(short.post("/imports", content=b"{}", headers=auth), 504)


def test_full_connection_pool_is_503_for_that_service_only(
    start_gateway: StartGateway, auth: dict[str, str], upstreams: dict[str, Upstream]
) -> None:
    # The slow request holds the connection until its read timeout (4 s, the stand-in takes
    # 5): the 503 must come before that, which 2 s left too little room for beside workers.
    client = start_gateway(max_connections=1, pool_timeout_seconds=0.2, read_timeout_seconds=4)
    results: dict[str, int] = {}
    slow_before = upstreams["tracking"].hits["slow"]

    def slow() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=15) as other:
            results["slow"] = other.get("/goals/slow", headers=auth).status_code

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while upstreams["tracking"].hits["slow"] == slow_before:  # it holds the only connection
            assert time.monotonic() < deadline
            time.sleep(0.01)
        response = client.get("/goals/x", headers=auth)
        assert_problem(response, 503)
        assert "capacity" in response.json()["detail"]
        # Each service has a pool of its own: a full tracking pool leaves analytics alone.
        assert client.get("/analytics/streak", headers=auth).status_code == 200
    finally:
        thread.join(15)
    assert results["slow"] == 504


def test_broken_upstream_is_502(
    start_gateway: StartGateway, auth: dict[str, str], garbage_server: GarbageServer
) -> None:
    client = start_gateway(analytics_url=garbage_server.url)
    assert_problem(client.get("/analytics/dashboard", headers=auth), 502)


def test_upstream_connections_are_reused(start_gateway: StartGateway, auth: dict[str, str]) -> None:
    client = start_gateway()
    ports = {client.get("/goals/x", headers=auth).json()["client_port"] for _ in range(10)}
    # Sequential requests ride one kept-alive connection, not one connection each.
    assert len(ports) == 1
