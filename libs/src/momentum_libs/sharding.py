"""The shard key of every collection a sharded MongoDB 7 would split, and a check of it.

Each user-owned collection is sharded on its owner (``user_id``; ``_id`` where the id is
the user's), so a user's documents live on one shard and every query of one user is
sent to that shard alone. That holds only while every read and write carries the key in
its filter: :class:`ShardKeyAudit`, a PyMongo command listener installed by
:func:`momentum_libs.mongo.mongo_client` when ``MOMENTUM_MONGO_AUDIT_FILE`` is set (the
cross-service tests set it), writes a line for each find, update, delete, findAndModify
or aggregate on such a collection whose filter lacks it. deploy/README.md gives the
``sh.shardCollection`` commands and the collections left unsharded.
"""

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pymongo import monitoring

SHARD_KEYS: dict[str, str] = {
    # tracking-service
    "goals": "user_id",
    "weekly_targets": "user_id",
    "daily_logs": "user_id",
    "idempotency_keys": "user_id",
    "sync_changes": "user_id",
    "sync_heads": "user_id",  # _id is the user's id too; every filter names user_id
    # auth-service (``users`` stays unsharded: see deploy/README.md)
    "sessions": "user_id",
    "refresh_tokens": "_id",  # a refresh presents the token alone: its hash is the key
    # analytics-service
    "analytics_users": "_id",  # the user's id
    "analytics_months": "user_id",
    "analytics_targets": "user_id",
}
"""Collection name → the field its shard key is on (collection names are unique across
the services' databases)."""

ANY = object()
"""In :data:`BROADCAST_BY_DESIGN`: any value of the field."""

BROADCAST_BY_DESIGN: tuple[tuple[str | None, str | None, Mapping[str, Any]], ...] = (
    # The outbox relay's sweep asks every shard for its pending documents; the partial
    # index on outbox_pending keeps each shard's part to what is pending.
    (None, None, {"outbox_pending": True}),
    # auth's start-up fix of sessions stored before refreshed_at existed (none are now).
    ("update", "sessions", {"refreshed_at": None}),
    # Erasing an account's refresh tokens (keyed by the token's hash): once per account.
    ("delete", "refresh_tokens", {"user_id": ANY}),
)
"""(command, collection, fields) of filters meant to reach every shard (None: any
command or collection): a filter holding all those fields (with those values) passes."""

AUDITED = ("find", "update", "delete", "findAndModify", "aggregate")

EXPIRY_SWEEP = "momentum-expiry-sweep"
"""The ``comment`` of the embedded server's expiry sweep (:mod:`momentum_libs.expiry`). Like
MongoDB's TTL monitor, which it stands in for, it deletes across users; it never runs
on MongoDB, so it is no broadcast there."""


def filters_of(command_name: str, command: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The filters a command selects documents by."""
    if command_name == "find":
        yield command.get("filter") or {}
    elif command_name == "update":
        yield from (u.get("q") or {} for u in command.get("updates", []))
    elif command_name == "delete":
        yield from (d.get("q") or {} for d in command.get("deletes", []))
    elif command_name == "findAndModify":
        yield command.get("query") or {}
    elif command_name == "aggregate":
        pipeline = command.get("pipeline") or [{}]
        yield pipeline[0].get("$match") or {}


def carries(query: Mapping[str, Any], field: str) -> bool:
    """Whether ``query`` pins ``field`` (at its top level or in every branch of an $and)."""
    if field in query:
        return True
    return any(carries(part, field) for part in query.get("$and", []))


def is_broadcast_by_design(command_name: str, collection: str, query: Mapping[str, Any]) -> bool:
    return any(
        command in (None, command_name)
        and where in (None, collection)
        and all(k in query and (v is ANY or query[k] == v) for k, v in fields.items())
        for command, where, fields in BROADCAST_BY_DESIGN
    )


def violations(command_name: str, command: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the audit reports of one command: the collection and the filter's field names
    (not its values: a filter may hold an email)."""
    if command_name not in AUDITED or command.get("comment") == EXPIRY_SWEEP:
        return []
    collection = command.get(command_name)
    if not isinstance(collection, str):
        return []  # e.g. an aggregate on the database
    key = SHARD_KEYS.get(collection)
    if key is None:
        return []
    return [
        {"command": command_name, "collection": collection, "key": key, "fields": sorted(query)}
        for query in filters_of(command_name, command)
        if not carries(query, key) and not is_broadcast_by_design(command_name, collection, query)
    ]


class ShardKeyAudit(monitoring.CommandListener):
    """Appends one JSON line to ``path`` per filter that would be sent to every shard."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        found = violations(event.command_name, event.command)
        if not found:
            return
        lines = "".join(json.dumps({**v, "pid": os.getpid()}) + "\n" for v in found)
        # O_APPEND: several processes append to one file; each write lands whole.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to check once it answered."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to check once it failed."""


def read_violations(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
