"""Export jobs: accepted at once, built in the background, downloadable by their user
until they expire."""

import uuid
from datetime import timedelta

import structlog
from momentum_libs.background import BackgroundTasks
from momentum_libs.clock import Clock, utcnow
from momentum_libs.timestamps import as_utc

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
        )
        await self._exports.insert(export)
        self._background.start(self._run(export), f"export-{export.id}")
        return export

    async def get(self, user_id: str, export_id: str) -> Export:
        """The user's live export; another user's, a missing or an expired one: 404."""
        export = await self._exports.get(user_id, export_id)
        if export is None or as_utc(export.expires_at) <= utcnow():
            raise not_found("Export")
        return export

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
        """Build the file; a failure marks the job failed (the client sees it), never
        kills the process. Nothing resumes a job after a restart: it stays pending until
        it expires, and the client asks for a new one."""
        try:
            await self._exports.set(export.id, status="running", percent=10)
            records = await self.records(export.user_id)
            document = export_document(export.user_id, records, self._clock.now())
            await self._exports.set(export.id, percent=60)
            content = as_json(document) if export.format == "json" else as_zip(document)
            await self._exports.set(export.id, status="ready", percent=100, content=content)
        except Exception:
            log.exception("export_failed", export_id=export.id, user_id=export.user_id)
            await self._exports.set(export.id, status="failed")
