"""Tool settings: the environment, then make up's stack.env, then defaults; errors redacted."""

from pathlib import Path

import pytest
from momentum_libs.cli import STACK_ENV, redacted, tool_settings
from momentum_libs.settings import StreamConsumerSettings


class Settings(StreamConsumerSettings):
    consumer_group: str = "analytics"
    consumer_name_prefix: str = "analytics"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MONGODB_URL", "REDIS_URL", "MOMENTUM_EVENTS_STREAM", "MOMENTUM_STORE_TIMEOUT_MS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOMENTUM_DATA_DIR", str(tmp_path))
    return tmp_path


def test_without_stack_env_the_defaults(data_dir: Path) -> None:
    settings = tool_settings(Settings)
    assert settings.mongodb_url == "mongodb://127.0.0.1:27017"
    assert settings.events_stream == "{momentum.events}"


def test_stack_env_gives_make_ups_addresses_and_the_environment_wins(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (data_dir / STACK_ENV).write_text(
        "# Written by `make up`\n"
        "MONGODB_URL=mongodb://127.0.0.1:41234/\n"
        "REDIS_URL=redis://127.0.0.1:6399/0\n"
        "MOMENTUM_EVENTS_STREAM=ns_momentum.events\n"
    )
    monkeypatch.setenv("REDIS_URL", "redis://explicit:6379/0")
    settings = tool_settings(Settings)
    assert settings.mongodb_url == "mongodb://127.0.0.1:41234/"
    assert settings.events_stream == "ns_momentum.events"
    assert settings.dead_letters == "ns_momentum.events.dead.analytics"
    assert settings.redis_url == "redis://explicit:6379/0"


def test_redacted_drops_user_info_only() -> None:
    assert redacted("mongodb://backup:s3cret@db-0,db-1/?replicaSet=rs0") == (
        "mongodb://***@db-0,db-1/?replicaSet=rs0"
    )
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"REDIS_URL": "redis+cluster://10.0.0.1:7000", "MOMENTUM_EVENTS_STREAM": "plain"},
            "invalid settings: Value error, MOMENTUM_EVENTS_STREAM='plain' has no hash tag",
        ),
        ({"MOMENTUM_STORE_TIMEOUT_MS": "1"}, "invalid setting MOMENTUM_STORE_TIMEOUT_MS: Input"),
    ],
)
def test_a_setting_that_does_not_validate_is_one_line_and_status_1(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    line: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        tool_settings(Settings)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and line in err, err
