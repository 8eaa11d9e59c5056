"""The outbox write every domain repository uses: one guarded single-document update.

A change and its event go to MongoDB in ONE update (``momentum_libs.outbox``), guarded by
the document's ``version``; a zero match means someone (another request, or the relay
clearing published events) wrote first, so the caller reads again and retries.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar, cast

from bson import ObjectId
from momentum_libs.events import Envelope
from momentum_libs.outbox import OutboxDocument, guard, update_with_event
from momentum_libs.problems import ProblemError

from momentum_tracking.common import MAX_WRITE_ATTEMPTS, not_found, parse_object_id

D = TypeVar("D", bound=OutboxDocument)

Change = tuple[Mapping[str, Any], Envelope]
"""The fields to set and the event telling of it."""

Notify = Callable[[], None]
"""Wakes the outbox relay after a write (it would find the event at its next sweep anyway)."""


async def apply_change(doc: D, fields: Mapping[str, Any], event: Envelope, *, delete: bool) -> bool:
    """Write ``fields`` and ``event`` to ``doc`` as it was read; False if it changed meanwhile."""
    collection = type(doc).get_pymongo_collection()
    result = await collection.update_one(
        guard(doc), update_with_event(doc, fields, event, delete=delete)
    )
    return result.matched_count == 1


async def change_with_retry(
    load: Callable[[], Awaitable[D | None]],
    build: Callable[[D], Change | None],
    *,
    delete: bool = False,
    first: D | None = None,
) -> D | None:
    """Read, build the change and its event, write it guarded; on a lost race read again.

    Returns the document as written (``build`` returning None means "nothing to change":
    the document as read), or None when it is gone. ``first``: the document as already
    read, used for the first attempt instead of loading it.
    """
    for attempt in range(MAX_WRITE_ATTEMPTS):
        doc = first if attempt == 0 and first is not None else await load()
        if doc is None:
            return None
        built = build(doc)
        if built is None:
            return doc
        fields, event = built
        if await apply_change(doc, fields, event, delete=delete):
            local = {k: v for k, v in fields.items() if not k.startswith("outbox")}
            return cast(
                D,
                doc.model_copy(
                    update={**local, "version": doc.version + 1, "deleted": delete or doc.deleted}
                ),
            )
        await backoff(attempt)
    raise conflict()


async def change_or_404(
    what: str,
    get: Callable[[str, ObjectId], Awaitable[D | None]],
    user_id: str,
    doc_id: str,
    build: Callable[[D], Change | None],
    notify: Notify,
    *,
    delete: bool = False,
) -> D:
    """``change_with_retry`` on the user's document ``doc_id`` (the id as the client sent
    it); a 404 "``what`` not found." when there is none; the relay woken after."""
    oid = parse_object_id(doc_id)

    async def load() -> D | None:
        return None if oid is None else await get(user_id, oid)

    doc = await change_with_retry(load, build, delete=delete)
    if doc is None:
        raise not_found(what)
    notify()
    return doc


async def delete_each(
    batch: Callable[[], Awaitable[list[D]]],
    reload: Callable[[ObjectId], Awaitable[D | None]],
    tombstone: Callable[[D], Change],
    notify: Notify,
) -> int:
    """Delete, each with its event, every document ``batch`` finds until it finds none."""
    deleted = 0
    while docs := await batch():
        for doc in docs:
            assert doc.id is not None
            if await change_with_retry(partial(reload, doc.id), tombstone, delete=True, first=doc):
                deleted += 1
        notify()
    return deleted


async def backoff(attempt: int) -> None:
    # Jitter so that writers racing for the same document do not collide again in step.
    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311


def conflict() -> ProblemError:
    return ProblemError(
        409, "The resource kept changing while this request tried to write it; try again."
    )
