"""Schedule wire models: the three kinds told apart, validated like Prefect's, intervals as seconds."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from flowplane.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule, Schedule

ADAPTER: TypeAdapter = TypeAdapter(Schedule)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"interval": 3600}, IntervalSchedule),
        ({"interval": "PT1H", "timezone": "America/New_York"}, IntervalSchedule),
        ({"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin", "day_or": False}, CronSchedule),
        ({"rrule": "FREQ=DAILY;BYHOUR=9"}, RRuleSchedule),
    ],
)
def test_valid_schedules_parse_to_their_kind(value: dict, kind: type) -> None:
    parsed = ADAPTER.validate_python(value)
    assert isinstance(parsed, kind)


def test_interval_is_sent_as_seconds_with_anchor_and_timezone() -> None:
    parsed = ADAPTER.validate_python({"interval": 90, "anchor_date": "2026-01-01T00:00:00"})
    data = parsed.model_dump(mode="json")
    assert data["interval"] == 90.0
    assert data["timezone"] == "UTC"
    assert data["anchor_date"].startswith("2026-01-01T00:00:00")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"cron": "not a cron"}, "cron"),
        ({"cron": "* * * * * *"}, "cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"interval": 0}, "interval"),
        ({"interval": -5}, "interval"),
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"rrule": "FREQ=DAILY", "timezone": "Nowhere/Land"}, "timezone"),
    ],
)
def test_invalid_schedules_name_the_bad_field(value: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ADAPTER.validate_python(value)
    assert any(err["loc"][-1] == field for err in info.value.errors())
