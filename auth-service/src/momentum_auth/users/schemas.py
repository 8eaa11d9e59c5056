from datetime import date
from functools import cache
from typing import Annotated, Self
from zoneinfo import available_timezones

from momentum_libs.events import Weekday, week_ordered
from momentum_libs.localday import LocalDay, parse_day_start
from momentum_libs.patch import NotNull
from momentum_libs.timestamps import Timestamp
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

from momentum_auth.users.models import User


def normalize_email(email: str) -> str:
    return email.strip().lower()


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _known_timezone(name: str) -> str:
    if name not in _timezones():
        raise ValueError("must be an IANA timezone name, such as 'Europe/Berlin'")
    return name


def _day_start(value: str) -> str:
    parse_day_start(value)
    return value


DayStart = Annotated[
    str,
    AfterValidator(_day_start),
    Field(
        description='When the user\'s day begins, "HH:MM" from 00:00 to 06:00 in 15-minute steps',
        examples=["04:00"],
    ),
]
RestWeekdays = Annotated[
    list[Weekday],
    Field(max_length=7, description="Weekdays that are rest days"),
    AfterValidator(week_ordered),
]
DailyGoalMinutes = Annotated[
    int, Strict(), Field(ge=1, le=1440, description="Minutes that make a day active")
]

Email = Annotated[EmailStr, StringConstraints(max_length=254), AfterValidator(normalize_email)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
TimezoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_timezone)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "password": "correct horse battery",
                    "display_name": "Ada",
                    "timezone": "Europe/Berlin",
                }
            ]
        }
    )

    email: Email
    password: Password
    display_name: DisplayName | None = None
    timezone: TimezoneName = "UTC"


class UserUpdate(_Request):
    """Only the fields given change; ``display_name: null`` clears the name."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"display_name": "Ada L.", "timezone": "Europe/London"},
                {"rest_weekdays": ["sat", "sun"], "day_start": "04:00", "daily_goal_minutes": 20},
            ]
        }
    )

    display_name: DisplayName | None = None
    timezone: Annotated[TimezoneName | None, NotNull] = None
    rest_weekdays: Annotated[RestWeekdays | None, NotNull] = None
    day_start: Annotated[DayStart | None, NotNull] = None
    daily_goal_minutes: Annotated[DailyGoalMinutes | None, NotNull] = None
    password: Annotated[Password | None, NotNull] = None
    current_password: Annotated[str, StringConstraints(max_length=1024)] | None = None

    @model_validator(mode="after")
    def _password_needs_current(self) -> Self:
        if self.password is not None and self.current_password is None:
            raise ValueError("changing the password needs current_password")
        return self


class UserRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "665f1c2e8b1e4a3d9c0a1b2c",
                    "email": "ada@example.com",
                    "display_name": "Ada",
                    "timezone": "Europe/Berlin",
                    "rest_weekdays": ["sun"],
                    "day_start": "00:00",
                    "daily_goal_minutes": 1,
                    "created_at": "2026-03-02T09:30:00Z",
                    "updated_at": "2026-03-02T09:30:00Z",
                }
            ]
        }
    )

    id: str
    email: str
    display_name: str | None
    timezone: str
    rest_weekdays: list[Weekday]
    day_start: str
    daily_goal_minutes: int
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_document(cls, user: User) -> "UserRead":
        return cls(
            id=str(user.id),
            email=user.email,
            display_name=user.display_name,
            timezone=user.timezone,
            rest_weekdays=user.rest_weekdays,
            day_start=user.day_start,
            daily_goal_minutes=user.daily_goal_minutes,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class TodayRead(BaseModel):
    """The user's local day now, as the server computes it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "date": "2026-03-29",
                    "timezone": "Europe/Berlin",
                    "day_start": "00:00",
                    "starts_at": "2026-03-28T23:00:00Z",
                    "ends_at": "2026-03-29T22:00:00Z",
                }
            ]
        }
    )

    date: date
    timezone: str
    day_start: str
    starts_at: Timestamp
    ends_at: Timestamp

    @classmethod
    def of(cls, user: User, day: LocalDay) -> "TodayRead":
        return cls(
            date=day.date,
            timezone=user.timezone,
            day_start=user.day_start,
            starts_at=day.starts_at,
            ends_at=day.ends_at,
        )
