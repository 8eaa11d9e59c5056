"""Export jobs: accepted at once, built in the background, downloadable by their user
until they expire.

A job outlives the process building it: the builder holds a lease (``LEASE_S``, renewed
every third of it while it works), and a read of an unfinished job whose lease lapsed
(its process was killed, or restarted in a deployment) starts it again, on the replica
that read it. A job that has lost its builder ``MAX_ATTEMPTS`` times reads ``failed``
instead: if it was what killed them (too large for the memory), another attempt would
take down the next replica too.
"""

import asyncio
import uuid
from datetime import datetime, timedelta

import structlog
from momentum_libs.background import BackgroundTasks, stop_background
from momentum_libs.clock import Clock, utcnow
from momentum_libs.timestamps import as_utc
from pymongo.errors import PyMongoError

from momentum_tracking.breaks.repository import BreakRepository
from momentum_tracking.common import not_found
from momentum_tracking.days.repository import DaysRepository
from momentum_tracking.exports.content import UserRecords, as_json, as_zip, export_document
from momentum_tracking.exports.models import Export, ExportFormat
from momentum_tracking.exports.repository import ExportRepository
from momentum_tracking.goals.repository import GoalRepository
from momentum_tracking.logs.repository import LogRepository
from momentum_tracking.targets.repository import TargetRepository

log = structlog.get_logger(__name__)

MEDIA_TYPES: dict[str, str] = {"json": "application/json", "csv": "application/zip"}

LEASE_S = 30
"""How long a job's builder may go unheard of before the job counts as abandoned: long
beside a renewal (every LEASE_S / 3), short beside the client's patience."""

MAX_ATTEMPTS = 3


def _epoch_ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


class ExportService:
    def __init__(
        self,
        exports: ExportRepository,
        goals: GoalRepository,
        targets: TargetRepository,
        logs: LogRepository,
        breaks: BreakRepository,
        days: DaysRepository,
        background: BackgroundTasks,
        ttl_s: int,
        clock: Clock,
    ) -> None:
        self._exports = exports
        self._goals = goals
        self._targets = targets
        self._logs = logs
        self._breaks = breaks
        self._days = days
        self._background = background
        self._ttl_s = ttl_s
        self._clock = clock

    async def start(self, user_id: str, fmt: ExportFormat) -> Export:
        now = utcnow()
        export = Export(
            _id=uuid.uuid4().hex,
            user_id=user_id,
            format=fmt,
            created_at=now,
            expires_at=now + timedelta(seconds=self._ttl_s),
            lease_until_ms=_epoch_ms(now) + LEASE_S * 1000,
        )
        await self._exports.insert(export)
        self._build(export)
        return export

    async def get(self, user_id: str, export_id: str) -> Export:
        """The user's live export; another user's, a missing or an expired one: 404. An
        unfinished one whose builder is gone is started again (or failed) first."""
        export = await self._exports.get(user_id, export_id)
        now = utcnow()
        if export is None or as_utc(export.expires_at) <= now:
            raise not_found("Export")
        if export.status in ("pending", "running") and export.lease_until_ms < _epoch_ms(now):
            export = await self._restart(export, _epoch_ms(now))
        return export

    async def _restart(self, export: Export, now_ms: int) -> Export:
        if export.attempt >= MAX_ATTEMPTS:
            if await self._exports.set(export, status="failed"):
                log.error("export_abandoned", export_id=export.id, attempts=export.attempt)
        elif await self._exports.take_over(export, now_ms, now_ms + LEASE_S * 1000):
            log.warning("export_restarted", export_id=export.id, attempt=export.attempt + 1)
            restarted = await self._exports.get(export.user_id, export.id)
            if restarted is not None:
                self._build(restarted)
        return await self._exports.get(export.user_id, export.id) or export

    def _build(self, export: Export) -> None:
        self._background.start(self._run(export), f"export-{export.id}-{export.attempt}")

    async def download(self, user_id: str, export_id: str) -> tuple[bytes, str]:
        export = await self.get(user_id, export_id)
        if export.status != "ready" or export.content is None:
            raise not_found("Export file")
        return export.content, MEDIA_TYPES[export.format]

    async def records(self, user_id: str) -> UserRecords:
        return UserRecords(
            goals=await self._goals.all_of_user(user_id),
            targets=await self._targets.all_of_user(user_id),
            logs=await self._logs.all_of_user(user_id),
            breaks=await self._breaks.all_of_user(user_id),
            days=await self._days.get(user_id),
        )

    async def _run(self, export: Export) -> None:
        """Build the file, holding the job's lease; a failure marks the job failed (the
        client sees it), never kills the process."""
        renewing = asyncio.create_task(self._hold_lease(export))
        try:
            if not await self._exports.set(export, status="running", percent=10):
                return  # taken over before it began
            records = await self.records(export.user_id)
            await self._exports.set(export, percent=60)
            # Built in a thread: a large file would hold up every request of this replica.
            content = await asyncio.to_thread(self._file, export, records)
            await self._exports.set(export, status="ready", percent=100, content=content)
        except Exception:
            log.exception("export_failed", export_id=export.id, user_id=export.user_id)
            await self._exports.set(export, status="failed")
        finally:
            await stop_background(renewing)

    def _file(self, export: Export, records: UserRecords) -> bytes:
        document = export_document(export.user_id, records, self._clock.now())
        return as_json(document) if export.format == "json" else as_zip(document)

    async def _hold_lease(self, export: Export) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            lease_until_ms = _epoch_ms(utcnow()) + LEASE_S * 1000
            try:
                if not await self._exports.set(export, lease_until_ms=lease_until_ms):
                    return  # another attempt holds the job now
            except PyMongoError as exc:  # the next renewal may get through
                log.warning("export_lease_renewal_failed", export_id=export.id, error=str(exc))
