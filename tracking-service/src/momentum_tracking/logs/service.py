"""Rules for daily logs: owned goals only, date rules, idempotent creation, events."""

import hashlib
import json
from datetime import date, timedelta
from typing import Any

from bson import ObjectId
from momentum_libs.events import Envelope, EventType, LogPayload, LogState, LogUpdatedPayload
from momentum_libs.problems import ProblemError, validation_problem
from pymongo.errors import DuplicateKeyError

from momentum_tracking.common import (
    dated_page,
    iso_date,
    not_found,
    now,
    parse_object_id,
)
from momentum_tracking.logs import repository
from momentum_tracking.logs.models import DailyLog, IdempotencyRecord
from momentum_tracking.logs.schemas import LogCreate, LogRead, LogUpdate
from momentum_tracking.store import Change, Notify, change_or_404, delete_each
from momentum_tracking.targets.service import require_goal

CURSOR_KIND = "daily-logs"


def _state(log: DailyLog) -> LogState:
    return LogState(goal_id=log.goal_id, date=date.fromisoformat(log.date), minutes=log.minutes)


def log_event(type_: EventType, log: DailyLog, version: int) -> Envelope:
    payload = LogPayload(
        log_id=str(log.id),
        goal_id=log.goal_id,
        date=date.fromisoformat(log.date),
        minutes=log.minutes,
        version=version,
    )
    return Envelope.create(type_, log.user_id, payload)


async def get(user_id: str, log_id: str) -> DailyLog:
    oid = parse_object_id(log_id)
    log = None if oid is None else await repository.get(user_id, oid)
    if log is None:
        raise not_found("Daily log")
    return log


async def create(
    user_id: str, data: LogCreate, notify: Notify, *, log_id: ObjectId | None = None
) -> DailyLog:
    goal_id = await require_goal(user_id, data.goal_id)
    t = now()
    log = DailyLog(
        id=log_id or ObjectId(),
        user_id=user_id,
        goal_id=goal_id,
        date=iso_date(data.date),
        minutes=data.minutes,
        note=data.note,
        created_at=t,
        updated_at=t,
    )
    created_event = log_event(EventType.LOG_CREATED, log, 1)
    await repository.insert(log, created_event)
    notify()
    return log


def request_hash(data: LogCreate) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_idempotent(
    user_id: str,
    key: str,
    data: LogCreate,
    notify: Notify,
    *,
    ttl_s: int,
    lease_s: int,
) -> LogRead:
    """``POST /daily-logs`` with an ``Idempotency-Key``: the first response, whatever the retries.

    The key is claimed by inserting its record (one request wins); the record names the
    id the log will get, so even a retry that takes over a claim abandoned by a crash
    writes that same log, never a second one.
    """
    record_id = f"{user_id}:{key}"
    digest = request_hash(data)
    for _ in range(5):
        t = now()
        record = IdempotencyRecord(
            _id=record_id,
            user_id=user_id,
            request_hash=digest,
            log_id=str(ObjectId()),
            lease_until=t + timedelta(seconds=lease_s),
            expires_at=t + timedelta(seconds=ttl_s),
        )
        if await repository.claim_key(record):
            break
        existing = await repository.get_key(record_id)
        if existing is None:
            continue  # it expired and went between our insert and read: claim again
        if existing.expires_at <= t:
            await repository.drop_expired_key(existing)
            continue
        if existing.request_hash != digest:
            raise validation_problem(
                ["header", "Idempotency-Key"],
                "This Idempotency-Key was used with another request body.",
            )
        if existing.state == "done" and existing.response is not None:
            return LogRead.model_validate(existing.response)
        if existing.lease_until > t or not await repository.take_over_key(
            existing, t + timedelta(seconds=lease_s)
        ):
            raise ProblemError(
                409,
                "A request with this Idempotency-Key is still being processed; retry later.",
                headers={"Retry-After": "1"},
            )
        record = existing  # abandoned by a crashed request: finish its work, same log id
        break
    else:
        raise ProblemError(409, "This Idempotency-Key is contended; retry later.")

    try:
        log = await create(user_id, data, notify, log_id=ObjectId(record.log_id))
    except ProblemError:
        await repository.release_key(record_id, digest)  # nothing was stored
        raise
    except DuplicateKeyError:
        # The abandoned attempt did write the log: answer with it.
        found = await repository.get(user_id, ObjectId(record.log_id))
        if found is None:
            raise ProblemError(
                409, "The log of this Idempotency-Key was deleted meanwhile."
            ) from None
        log = found
    response = LogRead.from_doc(log)
    await repository.complete_key(record_id, response.model_dump(mode="json"))
    return response


async def list_page(
    user_id: str,
    goal_id: str | None,
    date_from: date | None,
    date_to: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[DailyLog], str | None]:
    return await dated_page(
        repository.list_page,
        CURSOR_KIND,
        lambda log: log.date,
        user_id,
        goal_id,
        date_from,
        date_to,
        cursor,
        limit,
    )


async def update(user_id: str, log_id: str, data: LogUpdate, notify: Notify) -> DailyLog:
    oid = parse_object_id(log_id)
    given = data.model_fields_set
    fields: dict[str, Any] = {}
    if "goal_id" in given and data.goal_id is not None:
        if oid is None or await repository.get(user_id, oid) is None:
            raise not_found("Daily log")  # the log's own 404 comes before its goal's
        fields["goal_id"] = await require_goal(user_id, data.goal_id)
    if "date" in given and data.date is not None:
        fields["date"] = iso_date(data.date)
    if "minutes" in given and data.minutes is not None:
        fields["minutes"] = data.minutes
    if "note" in given:
        fields["note"] = data.note

    def build(log: DailyLog) -> Change | None:
        if all(getattr(log, k) == v for k, v in fields.items()):
            return None
        new = log.model_copy(update=fields)
        payload = LogUpdatedPayload(
            log_id=str(log.id), version=log.version + 1, old=_state(log), new=_state(new)
        )
        event = Envelope.create(EventType.LOG_UPDATED, log.user_id, payload)
        return {**fields, "updated_at": now()}, event

    return await change_or_404("Daily log", repository.get, user_id, log_id, build, notify)


def _tombstone(log: DailyLog) -> Change:
    """Deleted: ``log.deleted`` carries the state it had, so analytics can subtract it."""
    return {"updated_at": now()}, log_event(EventType.LOG_DELETED, log, log.version + 1)


async def delete(user_id: str, log_id: str, notify: Notify) -> None:
    await change_or_404(
        "Daily log", repository.get, user_id, log_id, _tombstone, notify, delete=True
    )


async def delete_all(
    user_id: str, notify: Notify, *, goal_id: str | None = None, batch: int = 200
) -> int:
    """Delete every log of the user (or of one goal of theirs), each with its event."""
    return await delete_each(
        lambda: repository.some_of_user(user_id, goal_id, batch),
        lambda oid: repository.get(user_id, oid),
        _tombstone,
        notify,
    )


async def delete_keys(user_id: str) -> int:
    return await repository.delete_keys_of_user(user_id)
