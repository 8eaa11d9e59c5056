"""Every command of the README's operations blocks, run as written against the test stack.

The commands find the stack through its ``stack.env`` alone, as against `make up`: the
environment they run in holds no store URL. ``<entry-id>`` and ``<user-id>`` are filled
with real ones (the oldest dead letter of the group named, the test's user).
"""

import json
import os
import re
import subprocess
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import redis
from momentum_libs.devstack import Stack, write_stack_env
from momentum_libs.events import (
    DEAD_CONSUMER,
    DEAD_DELIVERIES,
    DEAD_ENTRY_ID,
    DEAD_ERROR,
    DEAD_GROUP,
    DEAD_STREAM,
    Envelope,
    EventType,
    LogPayload,
)

from .conftest import Account
from .test_tracking_e2e import create_goal, create_log, wait_for

REPO = Path(__file__).resolve().parents[1]
TESTED_BLOCK = re.compile(
    r"<!-- tests/test_readme_commands\.py runs every command of this block[^>]*-->\n"
    r"```sh\n(.*?)```",
    re.S,
)


def readme_commands() -> list[str]:
    blocks = TESTED_BLOCK.findall((REPO / "README.md").read_text())
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_readme_shows_the_operations_commands() -> None:
    commands = readme_commands()
    for shown in ("status", "list", "show", "replay", "drop", "analytics-rebuild", "--user"):
        assert any(shown in command for command in commands), shown


def dead_letter_of(stack: Stack, user_id: str, goal_id: str, minutes: int) -> Envelope:
    """A log.created analytics never applied, as its consumer dead-letters it."""
    event = Envelope.create(
        EventType.LOG_CREATED,
        user_id,
        LogPayload(
            log_id=uuid.uuid4().hex[:24],
            goal_id=goal_id,
            date=date(2026, 11, 20),
            minutes=minutes,
            version=1,
        ),
    )
    client = redis.Redis.from_url(stack.redis_url)
    try:
        client.xadd(
            f"{stack.events_stream}.dead.analytics",
            {
                **event.to_stream_fields(),
                DEAD_ERROR: "RuntimeError: planted by the README test",
                DEAD_ENTRY_ID: "1-1",
                DEAD_STREAM: stack.events_stream,
                DEAD_GROUP: "analytics",
                DEAD_CONSUMER: "analytics-test",
                DEAD_DELIVERIES: "5",
            },
        )
    finally:
        client.close()
    return event


def dead_letter_ids(stack: Stack, group: str) -> list[str]:
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        entries: Any = client.xrange(f"{stack.events_stream}.dead.{group}")
        return [entry_id for entry_id, _ in entries]
    finally:
        client.close()


def stream_length(stack: Stack, stream: str) -> int:
    client = redis.Redis.from_url(stack.redis_url)
    try:
        return int(client.xlen(stream))
    finally:
        client.close()


def tool_env(stack: Stack) -> dict[str, str]:
    """No store URL, no stream, no database name: all of it must come from stack.env."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MOMENTUM_") and k not in ("MONGODB_URL", "REDIS_URL")
    }
    env["MOMENTUM_DATA_DIR"] = str(stack.data_dir)
    env["COLUMNS"] = "200"  # rich tables: room for whole entry ids
    return env


def test_each_operations_command_of_the_readme_works_as_written(
    gateway: httpx.Client, account: Account, stack: Stack
) -> None:
    user_id = str(account.user["id"])
    goal = create_goal(gateway, account)
    create_log(gateway, account, goal["id"], minutes=30)

    def total() -> int:
        response = gateway.get("/analytics/dashboard", headers=account.headers)
        return int(response.json()["total_minutes"])

    wait_for(total, lambda minutes: minutes == 30)
    # The session's stack is shared: other tests' dead letters may be there too.
    others = set(dead_letter_ids(stack, "analytics"))
    replayed = dead_letter_of(stack, user_id, goal["id"], minutes=7)
    dead_letter_of(stack, user_id, goal["id"], minutes=1000)
    ours = [i for i in dead_letter_ids(stack, "analytics") if i not in others]
    checks = Checks(stack, user_id, replayed, total, ours)

    env_file = write_stack_env(stack)
    try:
        ran = [checks.run(command, tool_env(stack)) for command in readme_commands()]
    finally:
        env_file.unlink()
    assert ran.count("checked") == len(ran), list(zip(readme_commands(), ran, strict=True))


class Checks:
    """Runs one README command with its placeholders filled, then checks what it did."""

    def __init__(
        self, stack: Stack, user_id: str, replayed: Envelope, total: Any, ours: list[str]
    ) -> None:
        self.stack = stack
        self.user_id = user_id
        self.replayed = replayed
        self.total = total
        self.ours = ours  # the dead letters this test planted, oldest first

    def our_dead_letters(self) -> list[str]:
        return [i for i in dead_letter_ids(self.stack, "analytics") if i in self.ours]

    def run(self, command: str, env: dict[str, str]) -> str:
        dead = self.our_dead_letters()
        filled = command.replace("<user-id>", self.user_id)
        filled = filled.replace("<entry-id>", dead[0] if dead else "0-0")
        done = subprocess.run(
            ["bash", "-c", filled],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        return self.check(filled.split("#")[0], done.stdout, dead)

    def check(self, command: str, out: str, dead_before: list[str]) -> str:
        stack = self.stack
        if " status" in command:
            every = len(dead_letter_ids(stack, "analytics"))
            assert f"dead letters of analytics: {every}" in out, out
        elif "dead-letters list" in command:
            assert all(entry_id in out for entry_id in dead_before), out
        elif "dead-letters show" in command:
            shown = json.loads(out)
            assert shown["id"] == dead_before[0]
            assert shown["event"]["event_id"] == self.replayed.event_id
        elif "dead-letters replay" in command:
            assert self.our_dead_letters() == dead_before[1:]
            # Applied by analytics (30 + 7), through analytics' replay stream alone.
            wait_for(self.total, lambda minutes: minutes == 37)
            assert stream_length(stack, f"{stack.events_stream}.replay.tracking") == 0
        elif "dead-letters drop" in command:
            assert self.our_dead_letters() == dead_before[1:]
            assert self.total() == 37  # dropped, never applied
        elif "--all" in command:
            report = json.loads(out.strip().splitlines()[-1])
            assert report["users"] >= 1
            # Rebuilt from tracking, which never had the replayed log.
            assert self.total() == 30
        elif "--user" in command:
            assert json.loads(out.strip().splitlines()[-1])["users"] == 1
        else:
            return "not checked"
        return "checked"
