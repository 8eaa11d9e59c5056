"""Hostile input through the gateway: every answer is a clear 4xx problem+json, never a 5xx.

Operator injection, oversized and malformed bodies, wrong content types, absurd ranges
and page sizes, garbage cursors, traversal-looking paths and unknown methods.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import httpcore
import httpx
import pytest
from momentum_libs.devstack import Stack

from ..conftest import Account, assert_problem, new_account
from .conftest import create_goal, today

INJECTIONS: tuple[object, ...] = (
    {"$ne": None},
    {"$gt": ""},
    {"$regex": ".*"},
    {"$where": "1 == 1"},
    [{"$ne": None}],
)
INJECTION_STRINGS = ('{"$ne": null}', "$ne", '{"$gt": ""}', "[$ne]=1", "'; return true; //")


@dataclass
class Victim:
    account: Account
    goal_id: str
    log_id: str
    target_id: str
    secrets: tuple[str, ...]  # strings that must never show in an attacker's answers


@pytest.fixture(scope="module")
def module_gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def victim(module_gateway: httpx.Client) -> Victim:
    account = new_account(module_gateway, display_name="Victim")
    goal_id = create_goal(module_gateway, account, "victim goal")
    log = module_gateway.post(
        "/daily-logs",
        json={"goal_id": goal_id, "date": today().isoformat(), "minutes": 42, "note": "victim"},
        headers=account.headers,
    )
    assert log.status_code == 201, log.text
    monday = today() - timedelta(days=today().weekday())
    target = module_gateway.post(
        "/weekly-targets",
        json={"goal_id": goal_id, "week_start": monday.isoformat(), "target_minutes": 300},
        headers=account.headers,
    )
    assert target.status_code == 201, target.text
    secrets = (goal_id, log.json()["id"], target.json()["id"], account.email, "victim goal")
    return Victim(account, goal_id, log.json()["id"], target.json()["id"], secrets)


@pytest.fixture(scope="module")
def attacker(module_gateway: httpx.Client) -> Account:
    account = new_account(module_gateway)
    create_goal(module_gateway, account, "attacker goal")
    return account


def _no_leak(response: httpx.Response, victim: Victim) -> None:
    assert response.status_code < 500, response.text
    for secret in victim.secrets:
        assert secret not in response.text, (response.request.url, secret)


def _clear_4xx(response: httpx.Response, *allowed: int) -> None:
    assert response.status_code in allowed, (response.request.url, response.text)
    assert_problem(response, response.status_code)
    # No stack trace, query or internal host in an error body.
    lowered = response.text.lower()
    for leak in ("traceback", "pymongo", "127.0.0.1", "localhost", "bson", 'file "'):
        assert leak not in lowered, (leak, response.text)


def test_operator_injection_in_json_bodies_is_422(
    module_gateway: httpx.Client, victim: Victim, attacker: Account
) -> None:
    h = attacker.headers
    tried = 0
    for op in INJECTIONS:
        for path, body in (
            ("/auth/login", {"email": op, "password": op}),
            ("/auth/login", {"email": victim.account.email, "password": op}),
            ("/auth/register", {"email": op, "password": "long enough pw"}),
            ("/auth/refresh", {"refresh_token": op}),
            ("/goals", {"title": op}),
            ("/goals", {"title": "t", "description": op}),
            ("/daily-logs", {"goal_id": op, "date": today().isoformat(), "minutes": 5}),
            ("/daily-logs", {"goal_id": victim.goal_id, "date": op, "minutes": 5}),
            ("/weekly-targets", {"goal_id": op, "week_start": "2026-11-23", "target_minutes": 5}),
        ):
            response = module_gateway.post(path, json=body, headers=h)
            _clear_4xx(response, 422)
            _no_leak(response, victim)
            tried += 1
        for path, body in (
            ("/users/me", {"display_name": op}),
            ("/users/me", {"timezone": op}),
            (f"/goals/{victim.goal_id}", {"title": op}),
            (f"/daily-logs/{victim.log_id}", {"minutes": op}),
        ):
            response = module_gateway.patch(path, json=body, headers=h)
            _clear_4xx(response, 404, 422)
            _no_leak(response, victim)
            tried += 1
    # Operators as keys of the body itself are unknown fields: 422 as well.
    operator_keys: list[dict[str, object]] = [
        {"$where": "1"},
        {"title": "x", "$set": {"user_id": "someone"}},
    ]
    for operator_body in operator_keys:
        _clear_4xx(module_gateway.post("/goals", json=operator_body, headers=h), 422)
        tried += 1
    # The victim's login still works: nothing was changed by any of it.
    login = module_gateway.post(
        "/auth/login", json={"email": victim.account.email, "password": victim.account.password}
    )
    assert login.status_code == 200
    assert tried >= 60


def test_operator_injection_in_query_and_path_values_matches_nothing(
    module_gateway: httpx.Client, victim: Victim, attacker: Account
) -> None:
    h = attacker.headers
    for value in INJECTION_STRINGS:
        for path, params in (
            ("/goals", {"is_active": value}),
            ("/daily-logs", {"goal_id": value}),
            ("/daily-logs", {"from": value}),
            ("/weekly-targets", {"goal_id": value}),
            ("/analytics/weekly-summary", {"goal_id": value}),
            ("/analytics/heatmap", {"from": value}),
        ):
            response = module_gateway.get(path, params=params, headers=h)
            assert response.status_code in (200, 404, 422), (path, response.text)
            if response.status_code != 200:
                assert_problem(response, response.status_code)
            elif "items" in response.json():
                assert response.json()["items"] == [], (path, params)
            _no_leak(response, victim)
        for path in ("/goals/", "/daily-logs/", "/weekly-targets/"):
            response = module_gateway.get(path + value, headers=h)
            _clear_4xx(response, 404)
    # PHP/qs-style bracket keys are just unknown parameters: the answer is the caller's own.
    for path in ("/goals", "/daily-logs", "/weekly-targets"):
        for bracket in ({"goal_id[$ne]": "x"}, {"user_id": str(victim.account.user["id"])}):
            response = module_gateway.get(path, params=bracket, headers=h)
            assert response.status_code == 200, response.text
            _no_leak(response, victim)
    # The victim's own resources by id: 404 to anyone else, never 403.
    for path in (
        f"/goals/{victim.goal_id}",
        f"/daily-logs/{victim.log_id}",
        f"/weekly-targets/{victim.target_id}",
        f"/analytics/weekly-summary?goal_id={victim.goal_id}",
    ):
        _clear_4xx(module_gateway.get(path, headers=h), 404)
    assert module_gateway.get("/daily-logs", headers=victim.account.headers).json()["items"]


def test_bodies_over_the_limit_are_413(module_gateway: httpx.Client, attacker: Account) -> None:
    over = b"x" * (1024 * 1024 + 1)
    json_h = {**attacker.headers, "Content-Type": "application/json"}
    _clear_4xx(module_gateway.post("/goals", content=over, headers=json_h), 413)
    _clear_4xx(
        module_gateway.post(
            "/auth/register", content=over, headers={"Content-Type": "application/json"}
        ),
        413,
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked, counted as it arrives
        for _ in range(1100):
            yield b"y" * 1024

    _clear_4xx(module_gateway.post("/goals", content=chunks(), headers=json_h), 413)
    # Just under the limit, a valid JSON body of junk is an ordinary 422.
    padded = json.dumps({"title": "t", "pad": "z" * (1024 * 1024 - 100)}).encode()
    _clear_4xx(module_gateway.post("/goals", content=padded, headers=json_h), 422)


def test_malformed_json_is_a_clear_4xx(module_gateway: httpx.Client, attacker: Account) -> None:
    json_h = {**attacker.headers, "Content-Type": "application/json"}
    bodies = [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser recursion limit
        b'{"title": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
        b'{"title": "\xff\xfe\xfd"}',  # invalid UTF-8
        b'{"title": "\xc3\x28"}',
        b'{"title": "\\ud800"}',  # a lone surrogate
        b'{"title": NaN}',
        b'{"title": "x", "target_date": 1e400}',
        b'{"title": "unterminated',
        b"",
        b"null",
        b"[]",
        b'"just a string"',
        b"\x00\x00\x00",
    ]
    for body in bodies:
        for path in ("/goals", "/daily-logs", "/weekly-targets"):
            response = module_gateway.post(path, content=body, headers=json_h)
            _clear_4xx(response, 400, 422)
    for body in bodies[2:]:  # the first two: see test_abuse_edges.py
        response = module_gateway.post(
            "/auth/login", content=body, headers={"Content-Type": "application/json"}
        )
        _clear_4xx(response, 400, 422)
    huge_minutes = b'{"goal_id": "x", "date": "2026-01-01", "minutes": ' + b"9" * 5000 + b"}"
    _clear_4xx(module_gateway.post("/daily-logs", content=huge_minutes, headers=json_h), 400, 422)


def test_wrong_content_types_are_a_clear_4xx(
    module_gateway: httpx.Client, attacker: Account
) -> None:
    body = b'{"title": "typed wrong"}'
    for content_type in (
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=zzz",
        "multipart/form-data",
        "application/octet-stream",
        "image/png",
    ):
        for path in ("/goals", "/auth/register", "/auth/refresh"):
            response = module_gateway.post(
                path, content=body, headers={**attacker.headers, "Content-Type": content_type}
            )
            _clear_4xx(response, 400, 415, 422)
    # Login accepts a form; a broken one is still a clear 4xx.
    for content_type, raw in (
        ("multipart/form-data; boundary=x", b"\xff\xfe garbage"),
        ("application/x-www-form-urlencoded", b"\xff\xfe=%%%"),
        ("application/x-www-form-urlencoded", b"username=a&" * 5000),
    ):
        response = module_gateway.post(
            "/auth/login", content=raw, headers={"Content-Type": content_type}
        )
        _clear_4xx(response, 400, 401, 422)


def test_absurd_ranges_dates_and_page_sizes(
    module_gateway: httpx.Client, attacker: Account
) -> None:
    h = attacker.headers
    ok_or_422 = (200, 422)
    for path, params in (
        ("/daily-logs", {"from": "2026-01-01", "to": "2000-01-01"}),
        ("/daily-logs", {"from": "0001-01-01", "to": "9999-12-31"}),
        ("/daily-logs", {"from": "10000-01-01"}),
        ("/daily-logs", {"from": "2026-02-30"}),
        ("/daily-logs", {"to": "-2026-01-01"}),
        ("/weekly-targets", {"from": "9999-12-27", "to": "0001-01-01"}),
        ("/analytics/heatmap", {"from": "1900-01-01", "to": "2100-01-01"}),
        ("/analytics/heatmap", {"from": "2026-01-02", "to": "2026-01-01"}),
        ("/analytics/heatmap", {"from": "0001-01-01", "to": "0001-01-10"}),
        ("/analytics/weekly-summary", {"week_start": "0001-01-01"}),
        ("/analytics/weekly-summary", {"week_start": "2026-11-24"}),  # a Tuesday
    ):
        response = module_gateway.get(path, params=params, headers=h)
        assert response.status_code in ok_or_422, (path, params, response.text)
        if response.status_code == 422:
            assert_problem(response, 422)
    for minutes in (0, -1, 1441, 10**30, 1.5, "60", True, None):
        body = {"goal_id": "x", "date": today().isoformat(), "minutes": minutes}
        _clear_4xx(module_gateway.post("/daily-logs", json=body, headers=h), 404, 422)
    for day in ("1999-12-31", (today() + timedelta(days=2)).isoformat(), "9999-12-31"):
        body = {"goal_id": "x", "date": day, "minutes": 5}
        _clear_4xx(module_gateway.post("/daily-logs", json=body, headers=h), 404, 422)
    for limit in ("0", "-1", "201", "1e3", "abc", str(10**30), "", "NaN", "50.5"):
        for path in ("/goals", "/daily-logs", "/weekly-targets"):
            _clear_4xx(module_gateway.get(path, params={"limit": limit}, headers=h), 422)
    assert date.max.isoformat() == "9999-12-31"


def test_garbage_cursors_are_422(
    module_gateway: httpx.Client, victim: Victim, attacker: Account
) -> None:
    h = attacker.headers
    # A real cursor of another list, and one of another user, must not cross over.
    for _ in range(3):
        create_goal(module_gateway, attacker, "more")
    goals_page = module_gateway.get("/goals", params={"limit": 1}, headers=h).json()
    goals_cursor = goals_page["next_cursor"]
    assert goals_cursor
    garbage = [
        "garbage",
        "!!!",
        "a" * 10_000,
        "W10",  # base64 of []
        "eyJhIjoxfQ",  # base64 of {"a":1}
        "WyJ4IiwieCIsIngiXQ",  # ["x","x","x"]
        "%00",
        "\u202e",
        '{"$gt": ""}',
        "../../etc/passwd",
    ]
    for path in ("/goals", "/daily-logs", "/weekly-targets"):
        for cursor in garbage:
            _clear_4xx(module_gateway.get(path, params={"cursor": cursor}, headers=h), 422)
    for path in ("/daily-logs", "/weekly-targets"):
        _clear_4xx(module_gateway.get(path, params={"cursor": goals_cursor}, headers=h), 422)
    # The attacker's cursor in the victim's hands pages the victim's own data only.
    response = module_gateway.get(
        "/goals", params={"cursor": goals_cursor}, headers=victim.account.headers
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert all(item["title"] != "more" for item in response.json()["items"])


def _raw(base_url: str, method: str, target: bytes, headers: dict[str, str]) -> httpx.Response:
    """Send ``target`` exactly as given: httpx would resolve its dot segments first."""
    url = httpx.URL(base_url)
    with httpcore.ConnectionPool() as pool:
        raw = pool.request(
            method.encode(),
            httpcore.URL(scheme=b"http", host=url.host.encode(), port=url.port, target=target),
            headers=[(k.encode(), v.encode()) for k, v in headers.items()],
        )
    return httpx.Response(
        raw.status,
        headers=raw.headers,
        content=raw.content,
        request=httpx.Request(method, f"{base_url}{target.decode('latin-1')}"),
    )


def test_traversal_looking_paths_are_404(
    module_gateway: httpx.Client, victim: Victim, attacker: Account
) -> None:
    h = attacker.headers
    paths = [
        b"/goals/../users/me",
        b"/goals/../../internal/x",
        b"/goals/./",
        b"/goals/%2e%2e/users/me",
        b"/goals/%2E%2E/%2E%2E/.well-known/jwks.json",
        b"/goals/..%2f..%2fusers%2fme",
        b"/goals/..%2F..%2F.well-known%2Fjwks.json",
        b"/goals/%252e%252e/users/me",
        b"/goals/..;/users/me",
        b"/daily-logs/..%5c..%5cusers",
        b"/analytics/../auth/me",
        b"/analytics/%2e%2e/internal",
        b"/weekly-targets/%00",
        b"/goals/" + b"a" * 4000,
        b"/goals/" + victim.goal_id.encode() + b"/../" + victim.goal_id.encode(),
        b"/.well-known/jwks.json",
        b"/internal/users",
        b"//goals",
    ]
    for raw in paths:
        response = _raw(str(module_gateway.base_url).rstrip("/"), "GET", raw, h)
        _clear_4xx(response, 404)
        _no_leak(response, victim)
        assert "keys" not in response.json()


def test_a_trailing_slash_is_404_without_a_redirect(
    module_gateway: httpx.Client, attacker: Account
) -> None:
    """A service's own slash redirect would name its internal host:port in ``Location``."""
    for path in ("/goals/", "/daily-logs/", "/weekly-targets/", "/users/me/", "/auth/me/"):
        response = module_gateway.get(path, headers=attacker.headers)
        _clear_4xx(response, 404)
        assert "location" not in response.headers
    for path in ("/analytics/dashboard/", "/analytics/streak/"):
        response = module_gateway.get(path, headers=attacker.headers)
        _clear_4xx(response, 404)
        assert "location" not in response.headers
    register = module_gateway.post("/auth/register/", json={})
    _clear_4xx(register, 401, 404)  # not the public /auth/register: a token is asked first
    assert "location" not in register.headers


def test_unknown_and_unsupported_methods(module_gateway: httpx.Client, attacker: Account) -> None:
    h = attacker.headers
    for method, path in (
        ("PUT", "/goals"),
        ("DELETE", "/goals"),
        ("PROPFIND", "/goals"),
        ("TRACE", "/goals"),
        ("CONNECT", "/daily-logs"),
        ("PATCH", "/analytics/dashboard"),
        ("POST", "/analytics/streak"),
        ("PUT", "/users/me"),
        ("PROPFIND", "/health"),
        ("DELETE", "/openapi.json"),
    ):
        response = module_gateway.request(method, path, headers=h)
        _clear_4xx(response, 405)
    # A method token the HTTP parser itself does not know never reaches the app: uvicorn
    # answers a plain 400 and closes. A 4xx all the same, never a 5xx or a hang.
    response = module_gateway.request("BREW", "/goals", headers=h)
    assert 400 <= response.status_code < 500
    # The connection pool recovers: the next request works.
    assert module_gateway.get("/goals", headers=h).status_code == 200


def test_oversized_headers_and_query_are_a_clear_4xx_or_handled(
    module_gateway: httpx.Client, attacker: Account
) -> None:
    h = attacker.headers
    response = module_gateway.get("/goals", params={"x": "y" * 60_000}, headers=h)
    assert 200 <= response.status_code < 500
    many = module_gateway.get("/goals", params=[("limit", "1")] * 2000, headers=h)
    assert 200 <= many.status_code < 500
    rid = module_gateway.get("/goals", headers={**h, "X-Request-ID": "r" * 10_000})
    assert rid.status_code == 200
    assert len(rid.headers["X-Request-ID"]) < 200  # not echoed back unbounded
    idem = module_gateway.post(
        "/daily-logs",
        json={"goal_id": "x", "date": today().isoformat(), "minutes": 5},
        headers={**h, "Idempotency-Key": "k" * 10_000},
    )
    _clear_4xx(idem, 404, 422)
