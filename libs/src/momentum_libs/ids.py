"""Ids a client sends us."""

from bson import ObjectId
from bson.errors import InvalidId


def parse_object_id(value: str) -> ObjectId | None:
    """An id from a client; None when it cannot be one of ours (the caller answers 404)."""
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None
