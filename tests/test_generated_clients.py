"""Clients generated from the gateway's /openapi.json, unpatched, run the whole flow.

Python: openapi-python-client (dev dependency). TypeScript: openapi-typescript types for
openapi-fetch, compiled with ``tsc --strict`` (clients/typescript/, tools from its
package-lock.json). Both are generated into a temporary directory; nothing generated is
committed.
"""

import datetime as dt
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from momentum_libs.devstack import Stack

from .conftest import PASSWORD

TYPESCRIPT_DIR = Path(__file__).resolve().parent.parent / "clients" / "typescript"
PACKAGE = "momentum_generated_client"
ANALYTICS_DEADLINE_S = 30.0
MISSING_ID = "0123456789abcdef01234567"


@pytest.fixture(scope="module")
def openapi_file(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    response = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=15)
    assert response.status_code == 200, response.text
    path = tmp_path_factory.mktemp("contract") / "openapi.json"
    path.write_bytes(response.content)
    return path


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


# -- Python ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def python_client(openapi_file: Path) -> Iterator[ModuleType]:
    out = openapi_file.parent / "python"
    out.mkdir()
    tools = Path(sys.executable).parent
    # The generator formats its output with ruff, from PATH: this venv's.
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}
    output = run(
        tools / "openapi-python-client",
        "generate",
        "--path",
        openapi_file,
        "--meta",
        "none",
        "--output-path",
        out / PACKAGE,
        cwd=out,
        env=env,
    )
    assert "Warning" not in output, output
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def generated(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def wait_for(probe: Any, done: Any) -> Any:
    """Analytics is computed from events: poll (bounded) until it has caught up."""
    deadline = time.monotonic() + ANALYTICS_DEADLINE_S
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = probe()
    return value


def test_python_client_runs_the_whole_flow(stack: Stack, python_client: ModuleType) -> None:
    models = generated("models")
    anonymous = python_client.Client(base_url=stack.gateway_url)
    email = f"py-{uuid.uuid4().hex[:12]}@example.com"
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)

    user = generated("api.auth.register").sync(
        client=anonymous, body=models.UserCreate(email=email, password=PASSWORD)
    )
    assert isinstance(user, models.UserRead) and user.email == email
    tokens = generated("api.auth.login").sync(
        client=anonymous, body=models.LoginRequest(email=email, password=PASSWORD)
    )
    assert isinstance(tokens, models.TokenPair)
    client = python_client.AuthenticatedClient(
        base_url=stack.gateway_url, token=tokens.access_token
    )

    goal = generated("api.goals.create_goal").sync(
        client=client, body=models.GoalCreate(title="Learn the cello")
    )
    assert isinstance(goal, models.GoalRead) and goal.is_active
    target = generated("api.weekly_targets.create_weekly_target").sync(
        client=client,
        body=models.TargetCreate(
            goal_id=goal.id,
            week_start=today - dt.timedelta(days=today.weekday()),
            target_minutes=120,
        ),
    )
    assert isinstance(target, models.TargetRead) and target.target_minutes == 120
    for day, minutes in ((yesterday, 15), (today, 30)):
        log = generated("api.daily_logs.create_daily_log").sync(
            client=client, body=models.LogCreate(goal_id=goal.id, date=day, minutes=minutes)
        )
        assert isinstance(log, models.LogRead) and log.date == day
    logs = generated("api.daily_logs.list_daily_logs").sync(client=client, goal_id=goal.id)
    assert [log.minutes for log in logs.items] == [30, 15]

    dashboard = wait_for(
        lambda: generated("api.analytics.get_dashboard").sync(client=client),
        lambda value: isinstance(value, models.Dashboard) and value.total_minutes == 45,
    )
    assert dashboard.total_minutes == 45
    assert dashboard.weekly_target_minutes == 120
    streak = generated("api.analytics.get_streak").sync(client=client)
    assert isinstance(streak, models.Streak) and streak.current_streak == 2
    heatmap = generated("api.analytics.get_heatmap").sync(client=client, from_=yesterday, to=today)
    assert isinstance(heatmap, models.Heatmap)
    assert [(day.date, day.minutes) for day in heatmap.days] == [(yesterday, 15), (today, 30)]

    missing = generated("api.goals.get_goal").sync_detailed(client=client, goal_id=MISSING_ID)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem) and missing.parsed.status == 404
    invalid = generated("api.goals.create_goal").sync_detailed(
        client=client, body=models.GoalCreate(title="")
    )
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, models.ValidationProblem)
    assert invalid.parsed.errors[0].loc == ["body", "title"]

    refreshed = generated("api.auth.refresh").sync(
        client=anonymous, body=models.RefreshRequest(refresh_token=tokens.refresh_token)
    )
    assert isinstance(refreshed, models.TokenPair)
    assert refreshed.refresh_token != tokens.refresh_token
    client = python_client.AuthenticatedClient(
        base_url=stack.gateway_url, token=refreshed.access_token
    )
    logout = generated("api.auth.logout").sync_detailed(
        client=client, body=models.RefreshRequest(refresh_token=refreshed.refresh_token)
    )
    assert logout.status_code == 204
    after = generated("api.users.get_me").sync_detailed(client=client)
    assert after.status_code == 401 and isinstance(after.parsed, models.Problem)


# -- TypeScript --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def typescript_tools() -> Path:
    npm = shutil.which("npm")
    assert npm, "the TypeScript client check needs Node.js 20+ and npm"
    modules = TYPESCRIPT_DIR / "node_modules"
    if not modules.exists():
        run(npm, "ci", "--no-audit", "--no-fund", cwd=TYPESCRIPT_DIR)
    return modules / ".bin"


def test_typescript_client_compiles_strict_and_runs_the_whole_flow(
    stack: Stack, openapi_file: Path, typescript_tools: Path
) -> None:
    work = openapi_file.parent / "typescript"
    work.mkdir()
    for name in ("package.json", "tsconfig.json", "flow.ts"):
        shutil.copy(TYPESCRIPT_DIR / name, work / name)
    (work / "node_modules").symlink_to(TYPESCRIPT_DIR / "node_modules")
    # A field with a default may be left out of a request: not "always present".
    run(
        typescript_tools / "openapi-typescript",
        openapi_file,
        "--default-non-nullable",
        "false",
        "-o",
        "schema.d.ts",
        cwd=work,
    )
    run(typescript_tools / "tsc", "-p", ".", cwd=work)
    output = run("node", work / "dist" / "flow.js", stack.gateway_url, cwd=work)
    seen = json.loads(output.strip().splitlines()[-1])
    assert seen["email"].startswith("ts-")
    assert seen["log_minutes"] == [30, 15]
    assert seen["dashboard_total_minutes"] == 45
    assert seen["weekly_target_minutes"] == 120
    assert seen["current_streak"] == 2
    assert seen["heatmap_minutes"] == [15, 30]
    assert seen["not_found"] == {
        "status": 404,
        "type": "https://momentum.example/problems/not-found",
    }
    assert seen["invalid"] == {"status": 422, "loc": ["body", "title"]}
    assert seen["logout_status"] == 204
    assert seen["after_logout"] == {"status": 401, "problem": 401}
