"""Auth and user-profile behaviours of docs/api.md, through the gateway, on the running stack."""

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import redis
from momentum_libs.devstack import Stack
from momentum_libs.events import Envelope, EventType

from .conftest import (
    PASSWORD,
    Account,
    assert_problem,
    login,
    new_account,
    past_refresh_grace,
    register,
    unique_email,
)


def test_register_returns_the_user_without_secrets(gateway: httpx.Client) -> None:
    email = unique_email()
    response = gateway.post(
        "/auth/register",
        json={
            "email": email.upper(),
            "password": PASSWORD,
            "display_name": "Ada",
            "timezone": "Europe/Berlin",
        },
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == {
        "id",
        "email",
        "display_name",
        "timezone",
        "rest_weekdays",
        "day_start",
        "daily_goal_minutes",
        "created_at",
        "updated_at",
    }
    assert user["email"] == email
    assert user["timezone"] == "Europe/Berlin"
    assert PASSWORD not in response.text
    assert "X-Request-ID".lower() in response.headers


def test_timezone_defaults_to_utc(gateway: httpx.Client) -> None:
    assert register(gateway)["timezone"] == "UTC"


def test_duplicate_email_is_409_whatever_the_case(gateway: httpx.Client) -> None:
    email = unique_email()
    register(gateway, email=email)
    response = gateway.post("/auth/register", json={"email": email.upper(), "password": PASSWORD})
    assert_problem(response, 409)


def test_register_validation_errors_are_422_with_errors(gateway: httpx.Client) -> None:
    cases = [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": unique_email(), "password": "short"},
        {"email": unique_email(), "password": "x" * 129},
        {"email": unique_email(), "password": PASSWORD, "timezone": "Mars/Olympus"},
        {"email": unique_email(), "password": PASSWORD, "is_admin": True},
        {"password": PASSWORD},
    ]
    for body in cases:
        problem = assert_problem(gateway.post("/auth/register", json=body), 422)
        assert isinstance(problem["errors"], list) and problem["errors"], body
        assert PASSWORD not in json.dumps(problem)


def test_login_json_and_form_both_work(gateway: httpx.Client) -> None:
    email = str(register(gateway)["email"])
    tokens = login(gateway, email)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] > 0
    form = gateway.post("/auth/login", data={"username": email, "password": PASSWORD})
    assert form.status_code == 200, form.text
    me = gateway.get("/auth/me", headers={"Authorization": f"Bearer {form.json()['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == email


def test_wrong_password_and_unknown_email_answer_the_same(gateway: httpx.Client) -> None:
    email = str(register(gateway)["email"])
    wrong = gateway.post("/auth/login", json={"email": email, "password": "wrong password"})
    unknown = gateway.post("/auth/login", json={"email": unique_email(), "password": PASSWORD})
    assert_problem(wrong, 401)
    assert_problem(unknown, 401)
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_failed_logins_lock_the_email_with_retry_after(gateway: httpx.Client) -> None:
    email = str(register(gateway)["email"])
    for _ in range(11):  # only MORE than 10 failures lock: the 11th is still judged
        r = gateway.post("/auth/login", json={"email": email, "password": "wrong password"})
        assert r.status_code == 401
    locked = gateway.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert_problem(locked, 429)
    assert int(locked.headers["Retry-After"]) > 0
    # Another email from the same address is not locked.
    other = str(register(gateway)["email"])
    assert login(gateway, other)["access_token"]


def test_me_needs_a_valid_token(gateway: httpx.Client, account: Account) -> None:
    assert gateway.get("/auth/me", headers=account.headers).json()["id"] == account.user["id"]
    assert gateway.get("/users/me", headers=account.headers).json()["id"] == account.user["id"]
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer garbage"},
    ):
        response = gateway.get("/auth/me", headers=headers)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tampered_and_alg_none_tokens_are_401(gateway: httpx.Client, account: Account) -> None:
    header, _payload, signature = account.access_token.split(".")
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    forged_claims = {**claims, "sub": "000000000000000000000000"}
    tampered = f"{header}.{_b64(forged_claims)}.{signature}"
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    for token in (tampered, alg_none, account.access_token[:-4] + "AAAA"):
        assert_problem(gateway.get("/auth/me", headers={"Authorization": f"Bearer {token}"}), 401)


def test_refresh_rotates_and_reuse_revokes_the_whole_session(
    gateway: httpx.Client, account: Account
) -> None:
    first = gateway.post("/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200, first.text
    pair = first.json()
    assert pair["refresh_token"] != account.refresh_token
    assert (
        gateway.get(
            "/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        ).status_code
        == 200
    )
    # The spent token again, after the grace: theft. 401, and every token of that session dies.
    past_refresh_grace()
    assert_problem(
        gateway.post("/auth/refresh", json={"refresh_token": account.refresh_token}), 401
    )
    assert_problem(
        gateway.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401
    )
    assert_problem(
        gateway.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}), 401
    )
    assert_problem(gateway.get("/auth/me", headers=account.headers), 401)


def test_logout_kills_refresh_and_access_tokens_at_once(
    gateway: httpx.Client, account: Account
) -> None:
    other_session = login(gateway, account.email)
    response = gateway.post(
        "/auth/logout", json={"refresh_token": account.refresh_token}, headers=account.headers
    )
    assert response.status_code == 204, response.text
    assert_problem(gateway.get("/auth/me", headers=account.headers), 401)
    assert_problem(
        gateway.post("/auth/refresh", json={"refresh_token": account.refresh_token}), 401
    )
    # Only that session ended.
    assert (
        gateway.get(
            "/auth/me", headers={"Authorization": f"Bearer {other_session['access_token']}"}
        ).status_code
        == 200
    )


def test_patch_profile_changes_only_given_fields(gateway: httpx.Client) -> None:
    acc = new_account(gateway, display_name="Before", timezone="Europe/Berlin")
    response = gateway.patch(
        "/users/me", json={"timezone": "Pacific/Kiritimati"}, headers=acc.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["timezone"] == "Pacific/Kiritimati"
    assert response.json()["display_name"] == "Before"
    cleared = gateway.patch("/users/me", json={"display_name": None}, headers=acc.headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["display_name"] is None
    assert_problem(
        gateway.patch("/users/me", json={"timezone": "Nowhere/Else"}, headers=acc.headers), 422
    )
    assert_problem(
        gateway.patch("/users/me", json={"email": "x@example.com"}, headers=acc.headers), 422
    )


def test_password_change_needs_current_and_ends_other_sessions(
    gateway: httpx.Client, account: Account
) -> None:
    other = login(gateway, account.email)
    wrong = gateway.patch(
        "/users/me",
        json={"password": "a new password", "current_password": "not it at all"},
        headers=account.headers,
    )
    assert assert_problem(wrong, 400)["type"].endswith("/wrong-password")  # type: ignore[union-attr]
    ok = gateway.patch(
        "/users/me",
        json={"password": "a new password", "current_password": PASSWORD},
        headers=account.headers,
    )
    assert ok.status_code == 200, ok.text
    assert (
        gateway.get("/users/me", headers=account.headers).status_code == 200
    )  # this session lives
    assert_problem(
        gateway.get("/users/me", headers={"Authorization": f"Bearer {other['access_token']}"}), 401
    )
    assert_problem(
        gateway.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}), 401
    )
    assert_problem(
        gateway.post("/auth/login", json={"email": account.email, "password": PASSWORD}), 401
    )
    assert login(gateway, account.email, "a new password")["access_token"]


def test_delete_account_erases_it_and_frees_the_email(gateway: httpx.Client, stack: Stack) -> None:
    acc = new_account(gateway)
    response = gateway.delete("/users/me", headers=acc.headers)
    assert response.status_code == 204, response.text
    assert_problem(gateway.get("/users/me", headers=acc.headers), 401)
    assert_problem(gateway.post("/auth/refresh", json={"refresh_token": acc.refresh_token}), 401)
    assert_problem(
        gateway.post("/auth/login", json={"email": acc.email, "password": PASSWORD}), 401
    )
    again = gateway.post("/auth/register", json={"email": acc.email, "password": PASSWORD})
    assert again.status_code == 201, again.text
    assert again.json()["id"] != acc.user["id"]
    # user.deleted reached the event stream, for the other services to erase their part.
    client = redis.Redis.from_url(stack.redis_url)
    try:
        events = [
            Envelope.from_stream_fields(fields) for _, fields in client.xrange(stack.events_stream)
        ]
    finally:
        client.close()
    deleted = [
        e for e in events if e.type is EventType.USER_DELETED and e.user_id == acc.user["id"]
    ]
    assert len(deleted) == 1


def test_spoofed_identity_headers_do_not_authenticate(
    gateway: httpx.Client, account: Account
) -> None:
    spoofed = {
        "X-User-Id": str(account.user["id"]),
        "X-Forwarded-For": "10.9.8.7",
        "X-Momentum-User": "x",
    }
    assert_problem(gateway.get("/users/me", headers=spoofed), 401)
    mine = gateway.get(
        "/users/me", headers={**account.headers, "X-User-Id": "000000000000000000000000"}
    )
    assert mine.status_code == 200
    assert mine.json()["id"] == account.user["id"]


def test_request_id_is_echoed_or_made(gateway: httpx.Client) -> None:
    assert (
        gateway.get("/health", headers={"X-Request-ID": "client-abc-123"}).headers["X-Request-ID"]
        == "client-abc-123"
    )
    assert len(gateway.get("/health").headers["X-Request-ID"]) >= 16


def test_health_reports_every_service(gateway: httpx.Client) -> None:
    response = gateway.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "services": {"auth": "ok", "tracking": "ok", "analytics": "ok"},
    }
    db = gateway.get("/health/db")
    assert db.status_code == 200
    assert db.json() == {"status": "ok", "mongodb": "ok", "redis": "ok"}


def test_openapi_describes_auth_and_user_routes(gateway: httpx.Client) -> None:
    spec = gateway.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/me",
        "/users/me",
    ):
        assert path in paths, path
    assert "delete" in paths["/users/me"] and "patch" in paths["/users/me"]
    assert not any(p.startswith("/.well-known") or p.startswith("/internal") for p in paths)
    assert gateway.get("/docs").status_code == 200


def test_a_refresh_retried_within_the_grace_answers_the_same_pair(
    gateway: httpx.Client, account: Account
) -> None:
    """A phone that lost the response to its refresh presents the token again: the same
    pair, the session alive; concurrent presentations all get that pair too."""
    body = {"refresh_token": account.refresh_token}
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: gateway.post("/auth/refresh", json=body), range(3)))
    assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
    retried = gateway.post("/auth/refresh", json=body)
    assert retried.status_code == 200, retried.text
    pair = answers[0].json()
    assert retried.json() == pair
    me = gateway.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200, me.text
    # After the grace, the same token is theft.
    past_refresh_grace()
    assert_problem(gateway.post("/auth/refresh", json=body), 401)
    assert_problem(
        gateway.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}), 401
    )
