"""Document ids: the ObjectIds POST makes, and the UUIDs offline clients choose for PUT.

A client-chosen id is stored as ``_id`` itself, the canonical UUID string, so every
reader that takes ``str(doc["_id"])`` (schemas, events, analytics' rebuild) needs no
change and a lookup stays one by ``_id``. One collection thus holds two BSON types of
``_id``: see :func:`momentum_tracking.common.keyset_after` for the list order.
"""

import uuid
from datetime import datetime
from typing import ClassVar

from beanie import PydanticObjectId
from bson import ObjectId
from momentum_libs.ids import parse_object_id
from momentum_libs.outbox import OwnedDocument
from pymongo import IndexModel

DocumentId = ObjectId | str
"""An ``_id`` of a tracked document: an ObjectId, or a client's UUID as a string."""


def client_id(value: str) -> str | None:
    """The canonical form of a client-chosen UUID (lower case, hyphenated); None if not one."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


def parse_id(value: str) -> DocumentId | None:
    """The ``_id`` an id from a client names; None when it cannot be one (a 404)."""
    oid = parse_object_id(value)
    return oid if oid is not None else client_id(value)


class TrackedDocument(OwnedDocument):
    """A user's document whose ``_id`` may be a client-chosen UUID.

    Its tombstone stays for the tombstone retention (``purge_at``, set when it is
    tombstoned; :data:`PURGE_INDEX` removes it then), so a PUT of a deleted id is refused
    instead of bringing the document back. Every read filters ``deleted`` already.
    """

    id: PydanticObjectId | str | None = None  # type: ignore[assignment]
    purge_at: datetime | None = None
    keep_tombstones: ClassVar[bool] = True


PURGE_INDEX = IndexModel([("purge_at", 1)], expireAfterSeconds=0, name="purge_tombstones")
"""MongoDB removes a tombstone once its ``purge_at`` is past (live documents have none)."""
