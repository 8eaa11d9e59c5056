"""Cascading erasure: a goal with everything under it, or a whole account.

This is the one place that names everything a goal or a user has here. Each document
is tombstoned with its delete event (analytics subtracts what it counted; the relay
removes the tombstones once published), so running an erasure twice changes nothing more.
"""

import structlog
from momentum_libs.conditional import IfMatch
from momentum_libs.events import Envelope, EventType, UserPayload

from momentum_tracking.breaks import service as breaks
from momentum_tracking.breaks.repository import BreakRepository
from momentum_tracking.changes.service import ChangeService
from momentum_tracking.days.service import DayService
from momentum_tracking.exports.repository import ExportRepository
from momentum_tracking.goals import service as goals
from momentum_tracking.goals.repository import GoalRepository
from momentum_tracking.logs import service as logs
from momentum_tracking.logs.repository import IdempotencyRepository, LogRepository
from momentum_tracking.targets import service as targets
from momentum_tracking.targets.repository import TargetRepository

log = structlog.get_logger(__name__)


class ErasureService:
    def __init__(
        self,
        goal_repository: GoalRepository,
        target_repository: TargetRepository,
        log_repository: LogRepository,
        break_repository: BreakRepository,
        key_repository: IdempotencyRepository,
        days: DayService,
        exports: ExportRepository,
    ) -> None:
        self._goals = goal_repository
        self._targets = target_repository
        self._logs = log_repository
        self._breaks = break_repository
        self._keys = key_repository
        self._days = days
        self._exports = exports

    async def erase_goal(self, user_id: str, goal_id: str, if_match: IfMatch | None = None) -> None:
        """Delete a goal with its weekly targets, daily logs and breaks.

        The goal goes first, in one write: from then on every write naming it answers
        404 at once, however many clients keep writing, and the DELETE does not wait on
        them. Then its targets, logs and breaks are swept. One whose write was
        already past the goal check when the goal went is taken away by its own writer,
        which checks the goal again after writing (``_undo_if_goal_went``): either this
        sweep finds it or its writer does, so nothing is orphaned.
        """
        goal = await self._goals.get_or_404(user_id, goal_id)
        await self._goals.tombstone(user_id, goal, goals.tombstone, if_match=if_match)
        await self._sweep(user_id, str(goal.id))

    async def erase_user(self, user_id: str) -> None:
        """Delete every goal, weekly target, daily log, break, idempotency key, export and
        day settings of the user."""
        erased = await self._goals.tombstone_all(user_id, goals.tombstone)
        await self._sweep(user_id, None)
        keys = await self._keys.delete_keys_of_user(user_id)
        await self._exports.erase_user(user_id)
        await self._days.forget(user_id)
        log.info("user_erased", user_id=user_id, goals=erased, idempotency_keys=keys)

    async def _sweep(self, user_id: str, goal_id: str | None) -> None:
        """The targets, logs and breaks of one goal of the user (None: all of the user's,
        breaks of every goal included)."""
        await self._targets.tombstone_all(user_id, targets.tombstone, goal_id=goal_id)
        await self._logs.tombstone_all(user_id, logs.tombstone, goal_id=goal_id)
        await self._breaks.tombstone_all(user_id, breaks.tombstone, goal_id=goal_id)


class UserEventsHandler:
    """The StreamConsumer handler of this service: keeps each user's day settings from
    ``user.registered``/``user.updated``, erases on ``user.deleted`` (change journal
    too), and journals tracking's own goal, target, log and break events for /changes."""

    def __init__(self, erasure: ErasureService, days: DayService, changes: ChangeService) -> None:
        self._erasure = erasure
        self._days = days
        self._changes = changes

    async def batch(self, events: list[Envelope]) -> None:
        """One user's events of a read, in order (the consumer's batch handler): runs of
        tracking's own events are journaled together, the rest one by one between them."""
        run: list[Envelope] = []
        for event in events:
            if _journaled(event):
                run.append(event)
                continue
            if run:
                await self._changes.record(event.user_id, run)
                run = []
            await self(event)
        if run:
            await self._changes.record(run[0].user_id, run)

    async def __call__(self, event: Envelope) -> None:
        if event.type is EventType.USER_DELETED:
            event.typed_payload()  # an unknown version raises: dead-lettered, not guessed at
            await self._erasure.erase_user(event.user_id)
            await self._changes.forget(event.user_id)
        elif event.type in (EventType.USER_REGISTERED, EventType.USER_UPDATED):
            payload = event.typed_payload()
            assert isinstance(payload, UserPayload)
            registered = event.type is EventType.USER_REGISTERED
            await self._days.user_changed(event.user_id, payload, event.occurred_at, registered)
        elif _journaled(event):
            await self._changes.record(event.user_id, [event])


def _journaled(event: Envelope) -> bool:
    """Of tracking's own events (a change of a goal, target, log or break)? Not a user
    event: those are auth's, ``user.settings_imported`` included (auth's to apply)."""
    return not event.type.value.startswith("user.")
