"""What every command-line tool shares: its settings (beside `make up` too), one-line errors.

A tool's settings come, in this order of precedence, from the environment, from the
``stack.env`` that ``make up`` writes into ``$MOMENTUM_DATA_DIR`` while it runs (the
addresses of the stores and services it started: the embedded MongoDB runs on a random
port), then from the defaults. So a tool works as written against a running ``make up``,
and an explicit ``MONGODB_URL`` still wins.
"""

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, PyMongoError

from momentum_libs.settings import ServiceSettings

STACK_ENV = "stack.env"
"""In the data dir while `make up` runs: the addresses of its stores and services."""

S = TypeVar("S", bound=ServiceSettings)
T = TypeVar("T")


def stack_env_path() -> str:
    return str(ServiceSettings().data_dir / STACK_ENV)


def tool_settings(cls: type[S]) -> S:
    """``cls`` read from the environment, then ``$MOMENTUM_DATA_DIR/stack.env`` if present.

    A setting that does not validate is one line on stderr and exit status 1."""
    try:
        return cls(_env_file=stack_env_path())
    except ValidationError as exc:
        error = exc.errors(include_input=False)[0]
        where = " " + ".".join(map(str, error["loc"])) if error["loc"] else "s"
        print(f"{Path(sys.argv[0]).name}: invalid setting{where}: {error['msg']}", file=sys.stderr)
        raise SystemExit(1) from None


def redacted(url: str) -> str:
    """The URL without its user info: an error line must not print a password."""
    return re.sub(r"//[^@/]*@", "//***@", url)


class ToolError(Exception):
    """A failure the tool explains in one line (the message), exit status 1."""


def explain(exc: BaseException, settings: ServiceSettings) -> str:
    """One line saying what failed and what to check; no traceback."""
    # Imported here, on a failure only: importing the Redis client costs a tool that never
    # talks to Redis (the analytics rebuild) about half a second at every start.
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    hint = f"(is `make up` running? it writes {stack_env_path()}; or set the URL)"
    if isinstance(exc, ConnectionFailure):
        return f"MongoDB at {redacted(settings.mongodb_url)} is unreachable {hint}: {exc}"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        return f"Redis at {redacted(settings.redis_url)} is unreachable {hint}: {exc}"
    if isinstance(exc, ToolError):
        return str(exc)
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, PyMongoError):
        return f"MongoDB at {redacted(settings.mongodb_url)} failed: {error}"
    if isinstance(exc, RedisError):  # e.g. something that is not a Redis answered
        return f"Redis at {redacted(settings.redis_url)} failed: {error}"
    return error


def run_tool(name: str, settings: ServiceSettings, work: Callable[[], T]) -> T:
    """Run ``work``; a store or tool failure prints one line to stderr and exits 1."""
    try:
        return work()
    except Exception as exc:  # whatever it is, one line: an operator reads no traceback
        line = explain(exc, settings).splitlines()[0]
        # PyMongo appends the whole topology description: the cause comes before it.
        line = line.split(", Topology Description:")[0]
        print(f"{name}: {line}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
