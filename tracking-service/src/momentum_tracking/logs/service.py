"""Rules for daily logs: owned goals only, date rules, idempotent creation, events."""

import hashlib
import json
from datetime import date, datetime, timedelta
from typing import Any

from bson import ObjectId
from momentum_libs.clock import utcnow
from momentum_libs.conditional import IfMatch
from momentum_libs.events import Envelope, EventType, LogPayload, LogState, LogUpdatedPayload
from momentum_libs.outbox import Change
from momentum_libs.problems import ProblemError, validation_problem
from pymongo.errors import DuplicateKeyError

from momentum_tracking.common import dated_page, iso_date, not_found
from momentum_tracking.days.service import DayService
from momentum_tracking.goals.service import GoalService
from momentum_tracking.ids import DocumentId, parse_id
from momentum_tracking.logs.models import DailyLog, IdempotencyRecord
from momentum_tracking.logs.repository import IdempotencyRepository, LogRepository
from momentum_tracking.logs.schemas import LogCreate, LogRead, LogUpdate
from momentum_tracking.settings import TrackingSettings

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


def tombstone(log: DailyLog) -> Change:
    """Deleted: ``log.deleted`` carries the state it had, so analytics can subtract it."""
    return {"updated_at": utcnow()}, log_event(EventType.LOG_DELETED, log, log.version + 1)


def request_hash(data: LogCreate) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class LogService:
    def __init__(
        self,
        logs: LogRepository,
        keys: IdempotencyRepository,
        goals: GoalService,
        days: DayService,
        settings: TrackingSettings,
    ) -> None:
        self._logs = logs
        self._keys = keys
        self._goals = goals
        self._days = days
        self._key_ttl_s = settings.idempotency_ttl_s
        self._key_lease_s = settings.idempotency_lease_s

    async def get(self, user_id: str, log_id: str) -> DailyLog:
        return await self._logs.get_or_404(user_id, log_id)

    async def _check_not_after_tomorrow(self, user_id: str, day: date) -> None:
        """A log's date is at most one day after the user's local today (not UTC's).

        A date up to the day after the earliest today on Earth passes for every user, so
        only a later one costs the read of the user's settings: today's logs of users less
        than a day east of UTC-18 (nearly everyone), and every past one, skip it."""
        if day <= self._days.earliest_today() + timedelta(days=1):
            return
        tomorrow = (await self._days.today(user_id)).latest + timedelta(days=1)
        if day > tomorrow:
            raise validation_problem(
                ["body", "date"],
                f"date must not be after tomorrow in your timezone ({tomorrow.isoformat()}).",
            )

    async def create(
        self, user_id: str, data: LogCreate, *, log_id: DocumentId | None = None
    ) -> DailyLog:
        await self._check_not_after_tomorrow(user_id, data.date)
        goal_id = parse_id(data.goal_id)
        if goal_id is None:
            raise not_found("Goal")
        log = _new_log(user_id, goal_id, data, utcnow(), log_id)
        await self._logs.insert(log, log_event(EventType.LOG_CREATED, log, 1), publish=False)
        await self._undo_unless_goal_lives(log)
        self._logs.publish()
        return log

    async def create_many(
        self, user_id: str, items: list[LogCreate]
    ) -> list[DailyLog | ProblemError]:
        """Create many logs (an import's) under the rules of :meth:`create`, in a few round
        trips instead of two per log: the result of each item, in order, the log or the
        problem that refused it (its date; its goal, not the user's live goal)."""
        results: list[DailyLog | ProblemError] = []
        writes: list[tuple[DailyLog, Envelope]] = []
        t = utcnow()
        fine_for_everyone = self._days.earliest_today() + timedelta(days=1)
        for data in items:
            goal_id = parse_id(data.goal_id)
            try:
                if data.date > fine_for_everyone:  # see _check_not_after_tomorrow
                    await self._check_not_after_tomorrow(user_id, data.date)
                if goal_id is None:
                    raise not_found("Goal")
            except ProblemError as exc:
                results.append(exc)
                continue
            log = _new_log(user_id, goal_id, data, t)
            results.append(log)
            writes.append((log, log_event(EventType.LOG_CREATED, log, 1)))
        await self._logs.insert_many(writes, publish=False)
        # The owned-goal check after the writes, as create's, once per goal.
        gone = [
            g
            for g in {log.goal_id for log, _ in writes}
            if not await self._goals.is_live(user_id, g)
        ]
        for i, result in enumerate(results):
            if isinstance(result, DailyLog) and result.goal_id in gone:
                await self._logs.tombstone(user_id, result, tombstone)
                results[i] = not_found("Goal")
        self._logs.publish()
        return results

    async def _undo_unless_goal_lives(self, log: DailyLog) -> None:
        """The owned-goal check, made after the write: a log on a goal that is not the
        user's live goal is tombstoned again (its creation and deletion events go out
        together) and answered 404.

        After, not before, because the goal may be deleted while this log is written:
        the goal's erasure tombstones the goal first, then sweeps its logs. Either that
        sweep finds this log, or this check, which runs after the write, finds the goal
        gone: no log is ever orphaned."""
        if not await self._goals.is_live(log.user_id, log.goal_id):
            await self._logs.tombstone(log.user_id, log, tombstone)
            raise not_found("Goal")

    async def create_idempotent(
        self, user_id: str, key: str, data: LogCreate
    ) -> tuple[LogRead, DailyLog | None]:
        """``POST /daily-logs`` with an ``Idempotency-Key``: the first response, whatever
        the retries, and the log when this request wrote it (None: a replay).

        The key is claimed by inserting its record (one request wins); the record names
        the id the log will get, so even a retry that takes over a claim abandoned by a
        crash writes that same log, never a second one.
        """
        await self._check_not_after_tomorrow(user_id, data.date)  # before the key, like 422s
        record_id = f"{user_id}:{key}"
        digest = request_hash(data)
        for _ in range(5):
            t = utcnow()
            record = IdempotencyRecord(
                _id=record_id,
                user_id=user_id,
                request_hash=digest,
                log_id=str(ObjectId()),
                lease_until=t + timedelta(seconds=self._key_lease_s),
                expires_at=t + timedelta(seconds=self._key_ttl_s),
            )
            if await self._keys.claim_key(record):
                break
            existing = await self._keys.get_key(user_id, record_id)
            if existing is None:
                continue  # it expired and went between our insert and read: claim again
            if existing.expires_at <= t:
                await self._keys.drop_expired_key(existing)
                continue
            if existing.request_hash != digest:
                raise validation_problem(
                    ["header", "Idempotency-Key"],
                    "This Idempotency-Key was used with another request body.",
                )
            if existing.state == "done" and existing.response is not None:
                return LogRead.model_validate(existing.response), None
            if existing.lease_until > t or not await self._keys.take_over_key(
                existing, t + timedelta(seconds=self._key_lease_s)
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
            log = await self.create(user_id, data, log_id=ObjectId(record.log_id))
        except ProblemError:
            await self._keys.release_key(user_id, record_id, digest)  # nothing was stored
            raise
        except DuplicateKeyError:
            # The abandoned attempt did write the log: answer with it.
            found = await self._logs.get(user_id, ObjectId(record.log_id))
            if found is None:
                raise ProblemError(
                    409, "The log of this Idempotency-Key was deleted meanwhile."
                ) from None
            log = found
        response = LogRead.from_document(log)
        await self._keys.complete_key(user_id, record_id, response.model_dump(mode="json"))
        return response, log

    async def put(
        self, user_id: str, log_id: str, data: LogCreate, if_match: IfMatch | None = None
    ) -> tuple[DailyLog, bool]:
        """``PUT /daily-logs/{id}``: POST's create under the client's id, or PATCH's write
        of every field (True: created)."""

        async def create(new_id: str) -> DailyLog:
            await self._goals.require_owned(user_id, data.goal_id)  # a 404 burns no id
            return await self.create(user_id, data, log_id=new_id)

        async def replace(log: DailyLog) -> DailyLog:
            every_field = LogUpdate.model_validate(data.model_dump())
            return await self.update(user_id, str(log.id), every_field, if_match)

        return await self._logs.put(user_id, log_id, create, replace, if_match)

    async def list_page(
        self,
        user_id: str,
        goal_id: str | None,
        date_from: date | None,
        date_to: date | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[DailyLog], str | None]:
        return await dated_page(
            self._logs.list_page,
            CURSOR_KIND,
            lambda log: log.date,
            user_id,
            goal_id,
            date_from,
            date_to,
            cursor,
            limit,
        )

    async def update(
        self, user_id: str, log_id: str, data: LogUpdate, if_match: IfMatch | None = None
    ) -> DailyLog:
        given = data.model_fields_set
        fields: dict[str, Any] = {}
        if "goal_id" in given and data.goal_id is not None:
            await self.get(user_id, log_id)  # the log's own 404 comes before its goal's
            fields["goal_id"] = await self._goals.require_owned(user_id, data.goal_id)
        if "date" in given and data.date is not None:
            await self._check_not_after_tomorrow(user_id, data.date)
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
            return {**fields, "updated_at": utcnow()}, event

        written = await self._logs.change_or_404(user_id, log_id, build, if_match=if_match)
        if "goal_id" in fields:  # moved to a goal that may be deleted meanwhile
            await self._undo_unless_goal_lives(written)
        return written

    async def delete(self, user_id: str, log_id: str, if_match: IfMatch | None = None) -> None:
        await self._logs.change_or_404(user_id, log_id, tombstone, delete=True, if_match=if_match)


def _new_log(
    user_id: str,
    goal_id: DocumentId,
    data: LogCreate,
    at: datetime,
    log_id: DocumentId | None = None,
) -> DailyLog:
    return DailyLog(
        id=log_id or ObjectId(),
        user_id=user_id,
        goal_id=str(goal_id),
        date=iso_date(data.date),
        minutes=data.minutes,
        note=data.note,
        created_at=at,
        updated_at=at,
    )
