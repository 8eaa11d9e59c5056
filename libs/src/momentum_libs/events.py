"""Domain events: the envelope and every payload, one definition for producers and consumers.

Wire format on the Redis stream: one field, ``event``, holding the envelope as JSON.
A payload schema change bumps that type's ``version``; consumers accept every
version they know and dead-letter the rest (see README, "Evolving an event").
"""

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from momentum_libs.localday import parse_day_start, zone
from momentum_libs.timestamps import UtcDatetime, to_milliseconds

STREAM_FIELD = "event"

# Fields a dead-letter entry carries besides the original entry's own fields.
DEAD_ERROR = "dead_letter_error"
DEAD_ENTRY_ID = "dead_letter_entry_id"
DEAD_STREAM = "dead_letter_stream"
DEAD_GROUP = "dead_letter_group"
DEAD_CONSUMER = "dead_letter_consumer"
DEAD_DELIVERIES = "dead_letter_deliveries"


class EventType(StrEnum):
    USER_REGISTERED = "user.registered"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    GOAL_CREATED = "goal.created"
    GOAL_UPDATED = "goal.updated"
    GOAL_ACTIVATED = "goal.activated"
    GOAL_DELETED = "goal.deleted"
    TARGET_CREATED = "target.created"
    TARGET_UPDATED = "target.updated"
    TARGET_DELETED = "target.deleted"
    LOG_CREATED = "log.created"
    LOG_UPDATED = "log.updated"
    LOG_DELETED = "log.deleted"
    BREAK_CREATED = "break.created"
    BREAK_UPDATED = "break.updated"
    BREAK_DELETED = "break.deleted"
    USER_SETTINGS_IMPORTED = "user.settings_imported"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAY_ORDER: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def week_ordered(days: list[Weekday]) -> list[Weekday]:
    """A set of weekdays, in week order (so an equal set reads and compares the same)."""
    if len(set(days)) != len(days):
        raise ValueError("must not name a weekday twice")
    return sorted(days, key=WEEKDAY_ORDER.index)


BreakKind = Literal["vacation", "sick", "rest", "other"]


MAX_RESTORED_SETTINGS = 400
"""Past day settings one import may restore (a change a day for more than a year)."""


class DayState(_Payload):
    """A user's day settings, checked as auth checks them (so a hand-edited file's are
    refused by the import, not dead-lettered by a consumer)."""

    timezone: str = Field(max_length=64)
    day_start: str = "00:00"
    rest_weekdays: list[Weekday] = Field([], max_length=7)
    daily_goal_minutes: int = Field(1, ge=1, le=1440)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zone(value)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError("must be an IANA timezone name, such as 'Europe/Berlin'") from exc
        return value

    @field_validator("day_start")
    @classmethod
    def _day_start(cls, value: str) -> str:
        parse_day_start(value)
        return value

    @field_validator("rest_weekdays")
    @classmethod
    def _week_ordered(cls, days: list[Weekday]) -> list[Weekday]:
        return week_ordered(days)


class PastDaySettings(DayState):
    """The day settings a user had from ``effective_date`` until the next entry."""

    effective_date: date


class SettingsImportedPayload(_Payload):
    """user.settings_imported (tracking → auth): an import's settings, for auth to apply.

    ``settings`` become the account's from its local today, as a ``PATCH /users/me``
    would; of ``history``, the entries dated before the account's first day become the
    settings of those days (``UserPayload.restored``), the rest are dropped."""

    settings: DayState
    history: list[PastDaySettings] = Field([], max_length=MAX_RESTORED_SETTINGS)


class UserPayload(_Payload):
    """user.registered and user.updated: what other services need to know of a user.

    Every event carries the whole current state. The day settings were added later:
    an event without them (None) means their defaults (``day_start`` "00:00",
    ``rest_weekdays`` [], ``daily_goal_minutes`` 1). ``effective_date`` is the user's
    local date from which this state applies (their today when they changed it, under
    the settings before; the date they registered), ``effective_from`` that day's first
    instant: days before it keep the settings they had. ``changed_at`` is the instant they
    changed (or the user registered), on the clock that chose ``effective_date``; None
    (events older than the field, accounts that have not changed them since): the
    envelope's ``occurred_at`` stands for it."""

    timezone: str
    day_start: str | None = None
    rest_weekdays: list[Weekday] | None = None
    daily_goal_minutes: int | None = None
    effective_date: date | None = None
    effective_from: UtcDatetime | None = None
    changed_at: UtcDatetime | None = None
    restored: list[PastDaySettings] | None = Field(
        None,
        max_length=MAX_RESTORED_SETTINGS,
        description="Settings of days before the account existed, restored by an import "
        "(user.settings_imported): each from its effective_date until the next entry",
    )


class UserDeletedPayload(_Payload):
    pass


class GoalPayload(_Payload):
    """goal.created, goal.updated, goal.activated. ``version`` grows with every change."""

    goal_id: str
    title: str
    is_active: bool
    version: int
    # When the goal was last made active; the latest activation wins, whatever the order
    # the events arrive in.
    activated_at: UtcDatetime | None = None


class GoalDeletedPayload(_Payload):
    goal_id: str
    version: int


class TargetPayload(_Payload):
    """target.created, target.updated, target.deleted (the state before deletion)."""

    target_id: str
    goal_id: str
    week_start: date
    target_minutes: int
    version: int


class LogState(_Payload):
    goal_id: str
    date: date
    minutes: int


class LogPayload(_Payload):
    """log.created and log.deleted (the state it had)."""

    log_id: str
    goal_id: str
    date: date
    minutes: int
    version: int


class LogUpdatedPayload(_Payload):
    log_id: str
    version: int
    old: LogState
    new: LogState


class BreakPayload(_Payload):
    """break.created, break.updated, break.deleted (the state before deletion).
    ``goal_id`` None: the break covers every goal of the user."""

    break_id: str
    goal_id: str | None
    start_date: date
    end_date: date
    kind: BreakKind
    version: int


PAYLOADS: dict[EventType, type[_Payload]] = {
    EventType.USER_REGISTERED: UserPayload,
    EventType.USER_UPDATED: UserPayload,
    EventType.USER_DELETED: UserDeletedPayload,
    EventType.GOAL_CREATED: GoalPayload,
    EventType.GOAL_UPDATED: GoalPayload,
    EventType.GOAL_ACTIVATED: GoalPayload,
    EventType.GOAL_DELETED: GoalDeletedPayload,
    EventType.TARGET_CREATED: TargetPayload,
    EventType.TARGET_UPDATED: TargetPayload,
    EventType.TARGET_DELETED: TargetPayload,
    EventType.LOG_CREATED: LogPayload,
    EventType.LOG_UPDATED: LogUpdatedPayload,
    EventType.LOG_DELETED: LogPayload,
    EventType.BREAK_CREATED: BreakPayload,
    EventType.BREAK_UPDATED: BreakPayload,
    EventType.BREAK_DELETED: BreakPayload,
    EventType.USER_SETTINGS_IMPORTED: SettingsImportedPayload,
}
CURRENT_VERSION = 1


class UnknownEventError(ValueError):
    """An entry no consumer can understand (unknown type or version): dead-letter it."""


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    type: EventType
    version: int = CURRENT_VERSION
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC), validate_default=True)
    user_id: str
    payload: dict[str, Any]
    traceparent: str | None = Field(
        None,
        max_length=128,
        description="W3C trace context of the request that caused the event (set by the "
        "outbox); a consumer's handling continues it. Absent in events written before it.",
    )

    @field_validator("occurred_at")
    @classmethod
    def _utc_milliseconds(cls, value: datetime) -> datetime:
        # MongoDB keeps milliseconds and may hand back naive UTC: an event read back from an
        # outbox must equal the event written, whichever way it was stored.
        return to_milliseconds(value)

    @classmethod
    def create(cls, type_: EventType, user_id: str, payload: _Payload) -> "Envelope":
        if PAYLOADS[type_] is not type(payload):
            raise TypeError(f"{type_} takes {PAYLOADS[type_].__name__}")
        return cls(type=type_, user_id=user_id, payload=payload.model_dump(mode="json"))

    def typed_payload(self) -> Any:
        """The payload as its model; UnknownEventError for a version we do not know, or a
        payload that does not fit its type's schema (no retry can fix either: dead-letter)."""
        if self.version != CURRENT_VERSION:
            raise UnknownEventError(f"{self.type} version {self.version} is not supported")
        try:
            return PAYLOADS[self.type].model_validate(self.payload)
        except ValueError as exc:
            raise UnknownEventError(f"{self.type} payload is not valid: {exc}") from exc

    def to_stream_fields(self) -> dict[str, str]:
        return {STREAM_FIELD: self.model_dump_json()}

    @classmethod
    def from_stream_fields(cls, fields: dict[Any, Any]) -> "Envelope":
        raw = fields.get(STREAM_FIELD, fields.get(STREAM_FIELD.encode()))
        if raw is None:
            raise UnknownEventError("stream entry has no 'event' field")
        try:
            return cls.model_validate_json(raw)
        except ValueError as exc:
            raise UnknownEventError(f"stream entry is not a valid event: {exc}") from exc


def json_schemas() -> dict[str, Any]:
    """The JSON schema of the envelope and of each payload, for docs and contract tests."""
    return {
        "envelope": Envelope.model_json_schema(),
        "payloads": {t.value: m.model_json_schema() for t, m in PAYLOADS.items()},
    }
