"""The event envelope: stream round trip, refusals, schemas."""

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from momentum_libs.events import (
    PAYLOADS,
    STREAM_FIELD,
    BreakPayload,
    DayState,
    Envelope,
    EventType,
    GoalDeletedPayload,
    GoalPayload,
    LogPayload,
    LogState,
    LogUpdatedPayload,
    PastDaySettings,
    SettingsImportedPayload,
    TargetPayload,
    UnknownEventError,
    UserDeletedPayload,
    UserPayload,
    json_schemas,
)
from pydantic import BaseModel, ValidationError

SAMPLES: dict[type[BaseModel], BaseModel] = {
    UserPayload: UserPayload(
        timezone="Europe/Paris",
        day_start="04:00",
        rest_weekdays=["sat", "sun"],
        daily_goal_minutes=20,
        effective_date=date(2026, 1, 6),
        effective_from=datetime(2026, 1, 6, 3, tzinfo=UTC),
        changed_at=datetime(2026, 1, 6, 9, 30, tzinfo=UTC),
    ),
    BreakPayload: BreakPayload(
        break_id="b1",
        goal_id=None,
        start_date=date(2026, 1, 6),
        end_date=date(2026, 1, 9),
        kind="vacation",
        version=1,
    ),
    UserDeletedPayload: UserDeletedPayload(),
    SettingsImportedPayload: SettingsImportedPayload(
        settings=DayState(timezone="Europe/Berlin", rest_weekdays=["sun", "sat"]),
        history=[
            PastDaySettings(effective_date=date(2025, 3, 2), timezone="UTC", daily_goal_minutes=30)
        ],
    ),
    GoalPayload: GoalPayload(
        goal_id="g1",
        title="Run a marathon",
        is_active=True,
        version=3,
        activated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    ),
    GoalDeletedPayload: GoalDeletedPayload(goal_id="g1", version=4),
    TargetPayload: TargetPayload(
        target_id="t1", goal_id="g1", week_start=date(2026, 1, 5), target_minutes=300, version=1
    ),
    LogPayload: LogPayload(log_id="l1", goal_id="g1", date=date(2026, 1, 6), minutes=45, version=1),
    LogUpdatedPayload: LogUpdatedPayload(
        log_id="l1",
        version=2,
        old=LogState(goal_id="g1", date=date(2026, 1, 6), minutes=45),
        new=LogState(goal_id="g2", date=date(2026, 1, 7), minutes=50),
    ),
}


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_type_round_trips_through_stream_fields(event_type: EventType) -> None:
    payload = SAMPLES[PAYLOADS[event_type]]
    envelope = Envelope.create(event_type, "user-1", payload)  # type: ignore[arg-type]
    fields = envelope.to_stream_fields()
    assert list(fields) == [STREAM_FIELD]
    for wire in (fields, {k.encode(): v.encode() for k, v in fields.items()}):
        back = Envelope.from_stream_fields(wire)
        assert back == envelope
        assert back.typed_payload() == payload


def test_envelope_defaults() -> None:
    a = Envelope.create(EventType.USER_DELETED, "u", UserDeletedPayload())
    b = Envelope.create(EventType.USER_DELETED, "u", UserDeletedPayload())
    assert a.event_id != b.event_id
    assert a.version == 1
    assert a.occurred_at.tzinfo is not None
    assert a.occurred_at.microsecond % 1000 == 0  # milliseconds, what MongoDB keeps


def test_occurred_at_is_kept_in_utc_milliseconds() -> None:
    paris = timezone(timedelta(hours=1))
    envelope = Envelope(
        type=EventType.USER_DELETED,
        user_id="u",
        payload={},
        occurred_at=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=paris),
    )
    assert envelope.occurred_at == datetime(2026, 3, 1, 11, 0, 0, 123000, tzinfo=UTC)
    naive = Envelope(
        type=EventType.USER_DELETED, user_id="u", payload={}, occurred_at=datetime(2026, 3, 1)
    )
    assert naive.occurred_at == datetime(2026, 3, 1, tzinfo=UTC)


def test_create_refuses_a_payload_of_another_type() -> None:
    with pytest.raises(TypeError):
        Envelope.create(EventType.GOAL_CREATED, "u", UserPayload(timezone="UTC"))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"other": "x"},
        {STREAM_FIELD: ""},
        {STREAM_FIELD: "not json"},
        {STREAM_FIELD: "[]"},
        {STREAM_FIELD: '{"type": "user.deleted"}'},
        {STREAM_FIELD: b"\xff\xfe"},
    ],
    ids=["empty", "no-event-field", "blank", "not-json", "array", "incomplete", "not-utf8"],
)
def test_garbage_is_an_unknown_event(fields: dict[Any, Any]) -> None:
    with pytest.raises(UnknownEventError):
        Envelope.from_stream_fields(fields)


def test_an_unknown_type_is_an_unknown_event() -> None:
    good = Envelope.create(EventType.USER_DELETED, "u", UserDeletedPayload()).model_dump_json()
    with pytest.raises(UnknownEventError, match="not a valid event"):
        Envelope.from_stream_fields({STREAM_FIELD: good.replace("user.deleted", "user.vanished")})


def test_an_extra_envelope_field_is_refused() -> None:
    good = Envelope.create(EventType.USER_DELETED, "u", UserDeletedPayload()).model_dump(
        mode="json"
    )
    import json

    with pytest.raises(UnknownEventError):
        Envelope.from_stream_fields({STREAM_FIELD: json.dumps({**good, "surprise": 1})})


def test_a_version_we_do_not_know_is_refused_when_read() -> None:
    future = Envelope.create(EventType.USER_UPDATED, "u", UserPayload(timezone="UTC"))
    future = future.model_copy(update={"version": 2})
    back = Envelope.from_stream_fields(future.to_stream_fields())
    with pytest.raises(UnknownEventError, match="version 2 is not supported"):
        back.typed_payload()


@pytest.mark.parametrize(
    "payload",
    [{}, {"timezone": 5}, {"timezone": "UTC", "extra": True}],
    ids=["missing", "wrong-type", "extra-field"],
)
def test_a_payload_not_fitting_its_schema_is_an_unknown_event(payload: dict[str, Any]) -> None:
    envelope = Envelope(type=EventType.USER_UPDATED, user_id="u", payload=payload)
    with pytest.raises(UnknownEventError, match="payload is not valid"):
        envelope.typed_payload()


def test_json_schemas_cover_every_event_type() -> None:
    schemas = json_schemas()
    assert set(schemas["payloads"]) == {t.value for t in EventType}
    envelope = schemas["envelope"]
    assert set(envelope["required"]) >= {"type", "user_id", "payload"}
    assert set(envelope["properties"]) == {
        "event_id",
        "type",
        "version",
        "occurred_at",
        "user_id",
        "payload",
        "traceparent",
    }
    assert "traceparent" not in envelope["required"]  # events written before it stay valid
    for event_type in EventType:
        schema = schemas["payloads"][event_type.value]
        assert schema["type"] == "object"
        sample = SAMPLES[PAYLOADS[event_type]].model_dump(mode="json")
        assert set(sample) <= set(schema.get("properties", {}))
        assert schema.get("additionalProperties") is False


def test_a_user_event_from_before_the_day_settings_still_reads() -> None:
    """Events written before day settings existed carry the timezone alone: they mean
    the defaults, which consumers fill in (None here), never a dead letter."""
    old = Envelope(type=EventType.USER_UPDATED, user_id="u1", payload={"timezone": "Asia/Tokyo"})
    payload = old.typed_payload()
    assert payload == UserPayload(timezone="Asia/Tokyo")
    assert (payload.day_start, payload.rest_weekdays, payload.effective_date) == (None, None, None)


def test_imported_settings_are_checked_as_auth_checks_them() -> None:
    state = DayState(timezone="Asia/Tokyo", rest_weekdays=["sun", "mon"])
    assert state.rest_weekdays == ["mon", "sun"]  # in week order
    for bad in (
        {"timezone": "Mars/Olympus"},
        {"timezone": "UTC", "day_start": "07:00"},
        {"timezone": "UTC", "rest_weekdays": ["sun", "sun"]},
        {"timezone": "UTC", "daily_goal_minutes": 0},
    ):
        with pytest.raises(ValidationError):
            DayState.model_validate(bad)
