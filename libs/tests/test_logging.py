"""Structured logging: JSON lines, secrets redacted wherever they sit, no frame locals."""

import json
from typing import Any

import pytest
import structlog
from momentum_libs.logging import configure_logging, redact_secrets

SECRETS = ("hunter2-password", "eyJ-access-token", "refresh-123", "Bearer abc.def", "s3cr3t")


def logged_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_secret_values_never_reach_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("libs-test", "INFO", json=True)
    log = structlog.get_logger("redaction-test")
    log.info(
        "login_attempt",
        email="bob@example.com",
        password="hunter2-password",
        Access_Token="eyJ-access-token",
        headers={"Authorization": "Bearer abc.def", "accept": "application/json"},
        body=[{"refresh_token": "refresh-123"}, {"nested": {"secret": "s3cr3t"}}],
    )
    err = capsys.readouterr().err
    for secret in SECRETS:
        assert secret not in err
    (line,) = logged_lines(err)
    assert line["event"] == "login_attempt"
    assert line["email"] == "bob@example.com"  # what is not secret stays readable
    assert line["password"] == "[redacted]"
    assert line["Access_Token"] == "[redacted]"
    assert line["headers"] == {"Authorization": "[redacted]", "accept": "application/json"}
    assert line["body"] == [{"refresh_token": "[redacted]"}, {"nested": {"secret": "[redacted]"}}]
    assert line["service"] == "libs-test"
    assert line["level"] == "info"


def test_an_exception_is_logged_without_the_locals_of_its_frames(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("libs-test", "INFO", json=True)
    log = structlog.get_logger("traceback-test")

    def check(password: str) -> None:
        token = "eyJ-access-token"  # noqa: F841 - a local a traceback must not show
        raise ValueError("wrong password")

    try:
        check("hunter2-password")
    except ValueError:
        log.exception("login_failed")
    err = capsys.readouterr().err
    (line,) = logged_lines(err)
    assert line["exception"][0]["exc_type"] == "ValueError"
    assert line["exception"][0]["frames"][-1]["name"] == "check"
    assert "hunter2-password" not in err
    assert "eyJ-access-token" not in err


def test_level_filters(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("libs-test", "WARNING", json=True)
    log = structlog.get_logger("level-test")
    log.info("quiet")
    log.warning("loud")
    assert [line["event"] for line in logged_lines(capsys.readouterr().err)] == ["loud"]
    configure_logging("libs-test", "INFO", json=True)


def test_redact_secrets_processor_alone() -> None:
    event = {"event": "x", "token": "t", "new_password": "p", "user": "u", "n": 1}
    assert redact_secrets(None, "info", event) == {
        "event": "x",
        "token": "[redacted]",
        "new_password": "[redacted]",
        "user": "u",
        "n": 1,
    }
