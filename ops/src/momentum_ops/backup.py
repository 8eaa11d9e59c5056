"""Backup and restore of the embedded stack's data dir (docs/operations.md).

What is copied: ``mongodb/`` (nx-27017's SQLite files: every service's database) and
``keys/`` (the development signing key, so tokens issued before stay verifiable). Not
copied: logs, ``stack.env`` and the lock (they describe a running stack), and Redis:
`make up`'s Redis keeps nothing on disk, and what it holds may be lost or is rebuilt
(see the runbook). Both refuse while a `make up` holds the data dir: a copy of SQLite
files being written is not a backup.
"""

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from momentum_libs.cli import ToolError
from momentum_libs.devstack import StackRefusedError, hold_data_dir

KEPT = ("mongodb", "keys")


@contextlib.contextmanager
def _stopped(data_dir: Path) -> Iterator[None]:
    """Hold ``data_dir``'s lock throughout: no `make up` starts on it meanwhile."""
    try:
        lock = hold_data_dir(data_dir)
    except StackRefusedError as refused:
        raise ToolError(str(refused)) from None
    try:
        yield
    finally:
        lock.close()


def backup(data_dir: Path, destination: Path) -> list[str]:
    """Copy the kept parts of ``data_dir`` into the new directory ``destination``."""
    if not (data_dir / "mongodb").is_dir():
        raise ToolError(f"{data_dir} holds no embedded MongoDB data (no mongodb/ in it)")
    if destination.exists():
        raise ToolError(f"{destination} exists; back up into a new directory")
    with _stopped(data_dir):
        copied = [part for part in KEPT if (data_dir / part).is_dir()]
        destination.mkdir(parents=True)
        for part in copied:
            shutil.copytree(data_dir / part, destination / part)
    return copied


def restore(source: Path, data_dir: Path) -> list[str]:
    """Replace the kept parts of ``data_dir`` by those of the backup ``source``."""
    if not (source / "mongodb").is_dir():
        raise ToolError(f"{source} is not a backup made by `momentum-ops backup` (no mongodb/)")
    data_dir.mkdir(parents=True, exist_ok=True)
    with _stopped(data_dir):
        restored = [part for part in KEPT if (source / part).is_dir()]
        for part in KEPT:  # what the backup lacks must not survive from the current data
            shutil.rmtree(data_dir / part, ignore_errors=True)
        for part in restored:
            shutil.copytree(source / part, data_dir / part)
    return restored
