"""Account deletion: erase everything a user has here, telling analytics as we go."""

import structlog
from momentum_libs.events import Envelope, EventType

from momentum_tracking.goals import service as goals_service
from momentum_tracking.logs import service as logs_service
from momentum_tracking.store import Notify

log = structlog.get_logger(__name__)


async def erase_user(user_id: str, notify: Notify) -> None:
    """Delete all goals, weekly targets, daily logs and idempotency keys of the user.

    Each goal, target and log is tombstoned with its delete event (the relay publishes
    them, then removes the tombstones). Running it twice changes nothing more.
    """
    goals = await goals_service.delete_all(user_id, notify)
    keys = await logs_service.delete_keys(user_id)
    log.info("user_erased", user_id=user_id, goals=goals, idempotency_keys=keys)


class UserEventsHandler:
    """The StreamConsumer handler of this service: acts on ``user.deleted``, skips the rest."""

    def __init__(self, notify: Notify) -> None:
        self._notify = notify

    async def __call__(self, event: Envelope) -> None:
        if event.type is EventType.USER_DELETED:
            event.typed_payload()  # an unknown version raises: dead-lettered, not guessed at
            await erase_user(event.user_id, self._notify)
