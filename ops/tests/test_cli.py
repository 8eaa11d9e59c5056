"""momentum-ops as an operator meets it: help everywhere, one line on every failure."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from momentum_libs.devstack import hold_data_dir
from momentum_libs.stores import free_port
from momentum_ops.cli import app
from typer.core import TyperGroup
from typer.testing import CliRunner


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            paths += command_paths(sub, (*path, name))
    return paths


COMMANDS = command_paths(typer.main.get_command(app))


def test_every_command_is_reached() -> None:
    assert ("dead-letters", "replay") in COMMANDS
    assert ("analytics-rebuild",) in COMMANDS
    assert len(COMMANDS) == 10  # the root, 5 commands, dead-letters and its 4


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "momentum-ops")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "Show this message and exit" in result.output


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def nothing_listens(tmp_path: Path) -> dict[str, str]:
    """Store URLs at ports nothing listens on, and a data dir with no stack.env."""
    return {
        **os.environ,
        "MONGODB_URL": f"mongodb://127.0.0.1:{free_port()}/",
        "REDIS_URL": f"redis://user:secret@127.0.0.1:{free_port()}/0",
        "MOMENTUM_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.mark.parametrize(
    ("args", "store"),
    [
        (["momentum_ops", "status"], "Redis"),
        (["momentum_ops", "dead-letters", "list", "analytics"], "Redis"),
        (["momentum_ops", "dead-letters", "replay", "analytics", "--all"], "Redis"),
        (["momentum_ops", "analytics-rebuild", "--all"], "MongoDB"),
        (["momentum_analytics.rebuild.cli", "--all"], "MongoDB"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else a,
)
def test_an_unreachable_store_is_one_line_naming_it_without_its_password(
    args: list[str], store: str, nothing_listens: dict[str, str]
) -> None:
    done = run(args, nothing_listens)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{store} at " in lines[0] and "is unreachable" in lines[0]
    assert "stack.env" in lines[0]  # says where make up's addresses would be
    assert "secret" not in lines[0]


def test_an_unknown_group_or_entry_is_one_line(nothing_listens: dict[str, str]) -> None:
    done = run(["momentum_ops", "dead-letters", "show", "nosuch", "1-1"], nothing_listens)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "momentum-ops: unknown consumer group 'nosuch'; the groups are analytics, tracking"
    )


def test_backup_and_restore_refuse_while_make_up_holds_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "mongodb").mkdir(parents=True)
    env = {**os.environ, "MOMENTUM_DATA_DIR": str(data_dir)}
    lock = hold_data_dir(data_dir)  # what a running make up holds
    try:
        for args in (["backup", str(tmp_path / "b")], ["restore", str(data_dir)]):
            done = run(["momentum_ops", *args], env)
            assert done.returncode == 1
            assert "another `make up` is running on the data dir" in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1
    finally:
        lock.close()
    assert not (tmp_path / "b").exists()


def test_backup_needs_a_new_directory_and_restore_a_backup(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "mongodb").mkdir(parents=True)
    (data_dir / "mongodb" / "db.sqlite").write_text("data")
    env = {**os.environ, "MOMENTUM_DATA_DIR": str(data_dir)}
    (tmp_path / "taken").mkdir()
    refused = run(["momentum_ops", "backup", str(tmp_path / "taken")], env)
    assert refused.returncode == 1
    assert "exists; back up into a new directory" in refused.stderr
    refused = run(["momentum_ops", "restore", str(tmp_path / "taken")], env)
    assert refused.returncode == 1
    assert "is not a backup" in refused.stderr
    assert (data_dir / "mongodb" / "db.sqlite").read_text() == "data"  # left untouched
