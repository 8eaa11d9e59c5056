"""The change feed: every change to a user's goals, targets, logs and breaks, in one
order per user, from the journal tracking writes as its own events come back.

The journal is fed by the outbox (tracking's consumer reads its own events), so a change
reaches it however the process that wrote it died: the feed may lag a write by the
relay's latency, never lose it. An item gives the resource as it is when read (a later
change shows again later), so a device applying items in order by id ends where the
server is. A first sync (no token) reads every live resource, then goes on from the
journal's head as it was when that read began: what changed meanwhile is journaled
after that head, and so comes again.
"""

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from momentum_libs.clock import utcnow
from momentum_libs.events import Envelope
from momentum_libs.problems import ProblemError, validation_problem
from pydantic import ValidationError

from momentum_tracking.breaks.schemas import BreakRead
from momentum_tracking.changes.models import ChangeEntry, ChangeType
from momentum_tracking.changes.repository import ChangeRepository
from momentum_tracking.changes.schemas import ChangeFeed, ChangeItem, SyncToken
from momentum_tracking.goals.schemas import GoalRead
from momentum_tracking.ids import parse_id
from momentum_tracking.logs.schemas import LogRead
from momentum_tracking.owned import OwnedRepository
from momentum_tracking.targets.schemas import TargetRead

TYPES: tuple[ChangeType, ...] = ("goal", "weekly_target", "daily_log", "break")
"""Every type, in the order a first sync reads them."""

_FROM_EVENT: dict[str, tuple[ChangeType, str]] = {
    "goal": ("goal", "goal_id"),
    "target": ("weekly_target", "target_id"),
    "log": ("daily_log", "log_id"),
    "break": ("break", "break_id"),
}
"""An event type's prefix → the resource type it tells of and the payload field of its id."""

_READ: dict[ChangeType, Any] = {
    "goal": GoalRead,
    "weekly_target": TargetRead,
    "daily_log": LogRead,
    "break": BreakRead,
}


def expired() -> ProblemError:
    return ProblemError(
        410,
        "This sync token is older than the changes kept; sync again from scratch (no since).",
        type_slug="sync-token-expired",
    )


def encode_token(token: SyncToken) -> str:
    raw = token.model_dump_json(exclude_none=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(value: str) -> SyncToken:
    """The token a client sent back; 422 for anything that is not one of ours."""
    try:
        raw: Any = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        token = SyncToken.model_validate(raw)
    except (ValueError, binascii.Error, UnicodeError, ValidationError):
        token = None
    if token is None or (token.seq is None) == (token.head is None):
        raise validation_problem(["query", "since"], "Not a sync token of this feed.")
    return token


class ChangeService:
    def __init__(
        self,
        journal: ChangeRepository,
        repositories: dict[ChangeType, OwnedRepository[Any]],
        retention: timedelta,
    ) -> None:
        self._journal = journal
        self._repositories = repositories
        self._retention = retention

    async def record(self, user_id: str, events: Sequence[Envelope]) -> None:
        """Journal the user's goal, target, log and break events among ``events``, in
        order (others are not changes of these); an event delivered again is journaled
        once. A few round trips for the lot, not three per event."""
        changes = [
            (e, kind) for e in events if (kind := _FROM_EVENT.get(e.type.value.split(".")[0]))
        ]
        if not changes:
            return
        seen = await self._journal.known_events(user_id, [e.event_id for e, _ in changes])
        entries = []
        for event, (change_type, id_field) in changes:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            entries.append(
                {
                    "type": change_type,
                    "entity_id": str(event.payload[id_field]),
                    "op": "delete" if event.type.value.endswith(".deleted") else "upsert",
                    "version": int(event.payload.get("version", 0)),
                    "event_id": event.event_id,
                    "changed_at": event.occurred_at,
                    "expires_at": utcnow() + self._retention,
                }
            )
        await self._journal.append(user_id, *entries)

    async def forget(self, user_id: str) -> None:
        await self._journal.forget_user(user_id)

    async def feed(
        self, user_id: str, since: str | None, types: Sequence[ChangeType], limit: int
    ) -> ChangeFeed:
        wanted = tuple(t for t in TYPES if t in types) if types else TYPES
        now = utcnow()
        if since is None:
            start = SyncToken(head=await self._journal.head(user_id), issued=_unix(now))
            return await self._full(user_id, start, wanted, limit, now)
        token = decode_token(since)
        if now - datetime.fromtimestamp(token.issued, now.tzinfo) > self._retention:
            raise expired()
        if token.seq is None:
            return await self._full(user_id, token, wanted, limit, now)
        return await self._since(user_id, token.seq, wanted, limit, now)

    async def _full(
        self,
        user_id: str,
        token: SyncToken,
        wanted: tuple[ChangeType, ...],
        limit: int,
        now: datetime,
    ) -> ChangeFeed:
        """A page of the first sync: every live resource, by type and id."""
        assert token.head is not None
        first, after = token.after or (0, "")
        items: list[ChangeItem] = []
        for index in range(first, len(TYPES)):
            if TYPES[index] not in wanted:
                continue
            docs = await self._repositories[TYPES[index]].all_of_user(user_id)
            for doc in sorted(docs, key=lambda d: str(d.id)):
                if index == first and str(doc.id) <= after:
                    continue
                if len(items) == limit:
                    resume = _position(items[-1])  # limit >= 1: never empty here
                    more = token.model_copy(update={"after": resume, "issued": _unix(now)})
                    return ChangeFeed(items=items, next_token=encode_token(more), has_more=True)
                items.append(_item(TYPES[index], doc, doc.updated_at))
        done = SyncToken(seq=token.head, issued=_unix(now))
        return ChangeFeed(items=items, next_token=encode_token(done), has_more=False)

    async def _since(
        self,
        user_id: str,
        seq: int,
        wanted: tuple[ChangeType, ...],
        limit: int,
        now: datetime,
    ) -> ChangeFeed:
        """The changes journaled after ``seq``: the unbroken run of entries after it, each
        resource once (at its last entry of the page), as it is now."""
        # The head first: every entry up to it was stored before it was read, so when the
        # run after ``seq`` is empty and the head is past ``seq``, that entry expired (or
        # was erased). Read after the run, the head could name an entry stored meanwhile.
        head = await self._journal.head(user_id)
        run = await self._journal.run_after(user_id, seq, limit + 1)
        if not run and head > seq:
            raise expired()
        page, has_more = run[:limit], len(run) > limit
        last: dict[tuple[str, str], ChangeEntry] = {}
        for entry in page:
            if entry.type in wanted:
                last.pop((entry.type, entry.entity_id), None)
                last[(entry.type, entry.entity_id)] = entry
        docs = await self._current(user_id, list(last.values()))
        items = [
            _item(entry.type, docs.get((entry.type, entry.entity_id)), entry.changed_at, entry)
            for entry in last.values()
        ]
        next_seq = page[-1].seq if page else seq
        token = SyncToken(seq=next_seq, issued=_unix(now))
        return ChangeFeed(items=items, next_token=encode_token(token), has_more=has_more)

    async def _current(
        self, user_id: str, entries: list[ChangeEntry]
    ) -> dict[tuple[str, str], Any]:
        """The stored documents (tombstones too) the entries name, by (type, id)."""
        found: dict[tuple[str, str], Any] = {}
        for change_type in TYPES:
            ids = [parse_id(e.entity_id) for e in entries if e.type == change_type]
            wanted = [i for i in ids if i is not None]
            if wanted:
                for doc in await self._repositories[change_type].by_ids(user_id, wanted):
                    found[(change_type, str(doc.id))] = doc
        return found


def _item(
    change_type: ChangeType, doc: Any, changed_at: datetime, entry: ChangeEntry | None = None
) -> ChangeItem:
    """The item of a resource: its current state when it lives, else a delete."""
    if doc is not None and not doc.deleted:
        data = _READ[change_type].from_document(doc)
        return ChangeItem(
            type=change_type,
            id=str(doc.id),
            op="upsert",
            version=doc.revision,
            changed_at=changed_at,
            data=data,
        )
    assert entry is not None  # a first sync reads live documents only
    version = doc.revision if doc is not None else entry.version
    return ChangeItem(
        type=change_type,
        id=entry.entity_id,
        op="delete",
        version=version,
        changed_at=changed_at,
        data=None,
    )


def _position(item: ChangeItem) -> tuple[int, str]:
    return TYPES.index(item.type), item.id


def _unix(t: datetime) -> int:
    return int(t.timestamp())
