"""No password, token or hash in any log line, after a full session through a logging stack.

The private stack's services write their logs to files (``stack.log_path(name)``), at
DEBUG: the most they can ever write.
By the time this runs they also hold everything the fault tests made them log
(outages, kills, retries). One full account life goes through the gateway, including
the error paths that tend to log their input (a wrong password, a spent refresh
token, a body that fails validation), and then every log line is searched.
"""

import uuid

import httpx

from ..conftest import assert_problem, past_refresh_grace
from .conftest import OwnStack, today

SERVICES = ("gateway", "auth", "tracking", "analytics")


def test_no_secret_reaches_any_log(own_stack: OwnStack, own_gateway: httpx.Client) -> None:
    client = own_gateway
    email = f"secret-{uuid.uuid4().hex[:10]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    new_password = f"npw-{uuid.uuid4().hex}"
    wrong_password = f"wrong-{uuid.uuid4().hex}"
    short_password = f"s{uuid.uuid4().hex[:6]}"  # 7 chars: refused, must not be echoed
    secrets: list[str] = [password, new_password, wrong_password, short_password]

    too_short = client.post("/auth/register", json={"email": email, "password": short_password})
    assert_problem(too_short, 422)
    assert short_password not in too_short.text
    registered = client.post(
        "/auth/register", json={"email": email, "password": password, "display_name": "S"}
    )
    assert registered.status_code == 201, registered.text
    assert_problem(
        client.post("/auth/login", json={"email": email, "password": wrong_password}), 401
    )
    form = client.post("/auth/login", data={"username": email, "password": password})
    assert form.status_code == 200, form.text
    pair = client.post("/auth/login", json={"email": email, "password": password}).json()
    secrets += [form.json()["access_token"], form.json()["refresh_token"]]
    secrets += [pair["access_token"], pair["refresh_token"]]
    headers = {"Authorization": f"Bearer {pair['access_token']}"}

    goal = client.post("/goals", json={"title": "private"}, headers=headers)
    assert goal.status_code == 201, goal.text
    goal_id = goal.json()["id"]
    logged = client.post(
        "/daily-logs",
        json={"goal_id": goal_id, "date": today().isoformat(), "minutes": 30},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert logged.status_code == 201, logged.text
    assert client.get("/analytics/dashboard", headers=headers).status_code == 200

    refreshed = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    secrets += [refreshed.json()["access_token"], refreshed.json()["refresh_token"]]
    headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    # Replaying the spent refresh token: theft detection, which logs a warning.
    past_refresh_grace()
    assert_problem(client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)
    again = client.post("/auth/login", json={"email": email, "password": password}).json()
    secrets += [again["access_token"], again["refresh_token"]]
    headers = {"Authorization": f"Bearer {again['access_token']}"}

    wrong = client.patch(
        "/users/me",
        json={"password": new_password, "current_password": wrong_password},
        headers=headers,
    )
    assert_problem(wrong, 400)
    changed = client.patch(
        "/users/me", json={"password": new_password, "current_password": password}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    last = client.post("/auth/login", json={"email": email, "password": new_password}).json()
    secrets += [last["access_token"], last["refresh_token"]]
    headers = {"Authorization": f"Bearer {last['access_token']}"}
    logout = client.post(
        "/auth/logout", json={"refresh_token": again["refresh_token"]}, headers=headers
    )
    assert logout.status_code in (204, 401), logout.text  # that session already ended: fine
    assert_problem(client.get("/users/me", headers={"Authorization": "Bearer x.y.z"}), 401)
    deleted = client.delete("/users/me", headers=headers)
    assert deleted.status_code == 204, deleted.text
    assert_problem(client.get("/users/me", headers=headers), 401)

    # Every signature on its own too: a log that cut a token in half still leaks it.
    secrets += [token.rsplit(".", 1)[1] for token in secrets if token.count(".") == 2]
    secrets += ["$argon2", "argon2id$"]
    stack = own_stack.stack
    total_lines = 0
    for name in SERVICES:
        path = stack.log_path(name)
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        assert lines, f"{name} wrote no log at all: the search would prove nothing"
        total_lines += len(lines)
        for number, line in enumerate(lines, 1):
            for secret in secrets:
                assert secret not in line, f"{path}:{number} leaks a secret: {line[:300]}"
    # The session did reach the logs (one access line per request), so the search is real.
    auth_log = stack.log_path("auth").read_text(encoding="utf-8", errors="replace")
    assert "/auth/login" in auth_log and "/users/me" in auth_log
    assert total_lines > 50
