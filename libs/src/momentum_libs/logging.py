"""Structured logging (structlog): JSON lines, request and trace ids bound, secrets redacted.

uvicorn's and other libraries' stdlib records are rendered the same way."""

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from momentum_libs.tracing import trace_ids

# Keys whose values never reach a log line, whatever logs them.
_SECRET_KEYS = frozenset(
    {
        "password",
        "current_password",
        "new_password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "password_hash",
        "secret",
        "private_key",
        "cookie",
    }
)


_REDACTED = "[redacted]"


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 5:
        return value
    if isinstance(value, Mapping):
        return {
            k: _REDACTED
            if isinstance(k, str) and k.lower() in _SECRET_KEYS
            else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, depth + 1) for v in value)
    return value


def redact_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Hide the value of every secret-named key, at the top level and in nested dicts/lists."""
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = _REDACTED
        elif isinstance(event_dict[key], Mapping | list | tuple):
            event_dict[key] = _redact(event_dict[key])
    return event_dict


# Tracebacks as data, WITHOUT each frame's local variables: those would carry the very
# passwords and tokens a handler was working on when it failed.
_exception_dicts = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at write time (not at configure time): a stream replaced
    later (pytest's capture, a redirect) never leaves loggers writing to a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = _CurrentStderr()


def add_trace_ids(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """``trace_id`` and ``span_id`` of the current span (a request's, an event's handling)."""
    event_dict.update(trace_ids())
    return event_dict


# Uvicorn's own loggers: their lines go through the same JSON rendering as ours.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    exceptions = _exception_dicts if json else structlog.processors.format_exc_info
    structlog.configure(
        processors=[*shared, exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),  # type: ignore[arg-type]
        # Not cached: a logger bound before a reconfigure (tests build several apps in one
        # process) would keep the old level. Costs ~1 us a call.
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    _route_stdlib_logging(level, [*shared, structlog.stdlib.add_logger_name], exceptions, renderer)


class _StdlibHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours on the root logger: replaced, not added again, by the next configure."""


def _route_stdlib_logging(level: str, pre_chain: list[Any], exceptions: Any, renderer: Any) -> None:
    """Third-party libraries and uvicorn log through stdlib: render their records with the
    same processors (service, request id, trace id, redaction, JSON), at our level."""
    handler = _StdlibHandler(_STDERR)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=pre_chain,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                exceptions,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _UVICORN_LOGGERS:  # uvicorn gave them handlers of its own, in plain text
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # The request log line comes from our own middleware, with its request id.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("pymongo", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
