from datetime import UTC, datetime, timedelta, timezone

from momentum_libs.timestamps import Timestamp, UtcDatetime
from pydantic import BaseModel


class Answer(BaseModel):
    at: Timestamp


class Stored(BaseModel):
    at: UtcDatetime


def test_a_timestamp_answers_rfc3339_utc_to_the_second() -> None:
    naive = datetime(2026, 11, 24, 9, 30, 0, 949000)
    assert Answer(at=naive).model_dump_json() == '{"at":"2026-11-24T09:30:00Z"}'
    berlin = datetime(2026, 11, 24, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert Answer(at=berlin).model_dump(mode="json") == {"at": "2026-11-24T09:30:00Z"}


def test_a_timestamp_reads_back_what_it_wrote_and_keeps_its_schema() -> None:
    assert Answer.model_validate_json('{"at":"2026-11-24T09:30:00Z"}').at == datetime(
        2026, 11, 24, 9, 30, tzinfo=UTC
    )
    for mode in ("validation", "serialization"):
        schema = Answer.model_json_schema(mode=mode)  # type: ignore[arg-type]
        assert schema["properties"]["at"]["format"] == "date-time"


def test_a_stored_naive_datetime_reads_as_utc() -> None:
    assert Stored(at=datetime(2026, 1, 1)).at.tzinfo is UTC
