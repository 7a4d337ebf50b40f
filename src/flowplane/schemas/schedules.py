"""Schedule models: cron, interval and RRule schedules, validated as Prefect validates them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Discriminator, Field, Tag, field_serializer, field_validator, model_validator

from flowplane.schemas.base import WireModel, now_utc

#: Prefect refuses RRule strings longer than this (they are stored in full).
MAX_RRULE_LENGTH = 6500


def valid_timezone(value: str | None) -> str | None:
    """``value`` if it names an IANA time zone (``None`` passes); ``ValueError`` otherwise."""
    if value is None:
        return None
    if value in ("UTC", "Z"):
        return "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f'Invalid timezone: "{value}"') from None
    if "/" not in value and value not in available_timezones():  # pragma: no cover - rare
        raise ValueError(f'Invalid timezone: "{value}"')
    return value


class IntervalSchedule(WireModel):
    """Every ``interval`` from ``anchor_date``, in ``timezone`` (wall-clock for DST)."""

    interval: dt.timedelta
    anchor_date: dt.datetime = Field(default_factory=lambda: now_utc().replace(microsecond=0))
    timezone: str | None = None

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: dt.timedelta) -> dt.timedelta:
        if value <= dt.timedelta(0):
            raise ValueError("The interval must be positive")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return valid_timezone(value)

    @model_validator(mode="after")
    def _default_timezone(self) -> IntervalSchedule:
        if self.anchor_date.tzinfo is None:
            zone = ZoneInfo(self.timezone) if self.timezone else dt.timezone.utc
            self.anchor_date = self.anchor_date.replace(tzinfo=zone)
        if self.timezone is None:
            key = getattr(self.anchor_date.tzinfo, "key", None)
            self.timezone = key or "UTC"
        return self

    @field_serializer("interval", when_used="json")
    def _seconds(self, value: dt.timedelta) -> float:
        return value.total_seconds()


class CronSchedule(WireModel):
    """Times matching a cron expression in ``timezone``; ``day_or`` ORs day-of-month and day-of-week."""

    cron: str
    timezone: str | None = None
    day_or: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        # Seconds fields are refused, as by Prefect: schedules resolve to minutes.
        if len(value.split()) > 5 or not croniter.is_valid(value):
            raise ValueError(f'Invalid cron string: "{value}"')
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return valid_timezone(value)


class RRuleSchedule(WireModel):
    """Times an iCalendar RRule yields, in ``timezone`` (default UTC)."""

    rrule: str
    timezone: str | None = "UTC"

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str) -> str:
        from dateutil import rrule

        if len(value) > MAX_RRULE_LENGTH:
            raise ValueError(f"The rrule is longer than {MAX_RRULE_LENGTH} characters")
        try:
            rrule.rrulestr(value, cache=False)
        except Exception as exc:  # dateutil raises ValueError, TypeError, ...
            raise ValueError(f"Invalid RRule string {value!r}: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return valid_timezone(value)


def _kind(value: Any) -> str:
    """Which schedule a value is, by the field that names it (so errors name the right fields)."""
    keys = value if isinstance(value, dict) else vars(value) if hasattr(value, "__dict__") else {}
    for kind in ("cron", "rrule", "interval"):
        if kind in keys:
            return kind
    return "interval"


#: Any of the three; the field that names the rule tells them apart.
Schedule = Annotated[
    Union[
        Annotated[IntervalSchedule, Tag("interval")],
        Annotated[CronSchedule, Tag("cron")],
        Annotated[RRuleSchedule, Tag("rrule")],
    ],
    Discriminator(_kind),
]


def schedule_json(schedule: IntervalSchedule | CronSchedule | RRuleSchedule) -> dict[str, Any]:
    """The schedule as stored and sent (intervals as seconds)."""
    return schedule.model_dump(mode="json")
