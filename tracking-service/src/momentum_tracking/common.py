"""Small helpers every domain uses: keyset cursors, list pages, dates, problems."""

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Generic, TypeVar

from beanie import Document
from fastapi import Query
from momentum_libs.problems import ProblemError, validation_problem
from pydantic import BaseModel, BeforeValidator, ConfigDict

from momentum_tracking.ids import DocumentId, parse_id

T = TypeVar("T")
D = TypeVar("D", bound=Document)

Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200)")]
Cursor = Annotated[
    str | None, Query(description="The previous page's next_cursor; omit for the first page")
]


def not_found(what: str) -> ProblemError:
    return ProblemError(404, f"{what} not found.")


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(extra="forbid")

    items: list[T]
    next_cursor: str | None


def encode_cursor(kind: str, key: str, oid: DocumentId) -> str:
    raw = json.dumps([kind, key, str(oid)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> tuple[str, DocumentId]:
    """The (sort key, id) a cursor of ``kind`` holds; 422 for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value: Any = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        value = None
    if (
        isinstance(value, list)
        and len(value) == 3
        and value[0] == kind
        and isinstance(value[1], str)
        and isinstance(value[2], str)
    ):
        oid = parse_id(value[2])
        if oid is not None:
            return value[1], oid
    raise validation_problem(["query", "cursor"], "Not a cursor of this list.")


def cut_page(
    items: list[D], limit: int, kind: str, key: Callable[[D], str]
) -> tuple[list[D], str | None]:
    """The page out of ``limit + 1`` items fetched, and the cursor after it (None: last page)."""
    if len(items) <= limit:
        return items, None
    last = items[limit - 1]
    assert last.id is not None
    return items[:limit], encode_cursor(kind, key(last), last.id)


def check_range(first: date | None, last: date | None) -> None:
    if first is not None and last is not None and first > last:
        raise validation_problem(["query", "from"], "'from' must not be after 'to'.")


DatedFetch = Callable[
    [str, str | None, str | None, str | None, tuple[str, DocumentId] | None, int],
    Awaitable[list[D]],
]
"""A repository's ``list_page(user_id, goal_id, from, to, after, limit)``."""


async def dated_page(
    fetch: DatedFetch[D],
    kind: str,
    key: Callable[[D], str],
    user_id: str,
    goal_id: str | None,
    first: date | None,
    last: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[D], str | None]:
    """One page of a list filtered by goal and a date range, newest first, and its cursor."""
    check_range(first, last)
    after = decode_cursor(kind, cursor) if cursor is not None else None
    items = await fetch(
        user_id,
        goal_id,
        iso_date(first) if first else None,
        iso_date(last) if last else None,
        after,
        limit + 1,
    )
    return cut_page(items, limit, kind, key)


def keyset_after(field: str, key: Any, oid: DocumentId) -> dict[str, Any]:
    """Filter for the items after (key, id) in (field desc, _id desc) order.

    ``_id`` is an ObjectId or a client's UUID string, and a comparison matches one BSON
    type only. MongoDB orders ObjectIds above strings, so (descending) a key's ObjectIds
    come first and its strings after. nx-27017 orders them the other way round: there a
    page boundary inside one key's mix of both kinds may repeat or skip items."""
    ties: list[dict[str, Any]] = [{field: key, "_id": {"$lt": oid}}]
    if not isinstance(oid, str):
        ties.append({field: key, "_id": {"$type": "string"}})
    return {"$or": [{field: {"$lt": key}}, *ties]}


def dated_query(
    field: str,
    user_id: str,
    goal_id: str | None,
    first: str | None,
    last: str | None,
    after: tuple[str, DocumentId] | None,
) -> dict[str, Any]:
    """The filter of a page of a user's dated list: by goal, ``field`` in [first, last]."""
    query: dict[str, Any] = {"user_id": user_id, "deleted": False}
    if goal_id is not None:
        query["goal_id"] = goal_id
    bounds = {op: v for op, v in (("$gte", first), ("$lte", last)) if v is not None}
    if bounds:
        query[field] = bounds
    if after is not None:
        query.update(keyset_after(field, after[0], after[1]))
    return query


def iso_date(value: date) -> str:
    return value.isoformat()


def _iso_date_only(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("must be a date as YYYY-MM-DD")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
"""A date in a body: only ``YYYY-MM-DD`` (no timestamps, no numbers)."""
