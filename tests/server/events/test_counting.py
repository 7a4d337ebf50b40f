"""Time buckets for event counts: aligned to the pivot, bounded in number."""

from __future__ import annotations

import datetime as dt

import pytest

from flowplane.schemas.events import TimeUnit
from flowplane.server.events.counting import PIVOT, InvalidCountRequest, bucket_index, buckets

UTC = dt.timezone.utc


def test_day_buckets_start_at_midnight_and_cover_the_range() -> None:
    since = dt.datetime(2026, 1, 10, 15, 30, tzinfo=UTC)
    until = dt.datetime(2026, 1, 12, 1, 0, tzinfo=UTC)
    spans = buckets(
        since, until, now=until + dt.timedelta(days=5), delta=TimeUnit.day.as_timedelta()
    )
    assert [s.start for s in spans] == [
        dt.datetime(2026, 1, 10, tzinfo=UTC),
        dt.datetime(2026, 1, 11, tzinfo=UTC),
        dt.datetime(2026, 1, 12, tzinfo=UTC),
    ]
    assert spans[0].end == dt.datetime(2026, 1, 10, 23, 59, 59, 999999, tzinfo=UTC)


def test_week_buckets_start_on_monday() -> None:
    monday = dt.datetime(2026, 1, 5, tzinfo=UTC)
    spans = buckets(
        monday + dt.timedelta(days=3),
        monday + dt.timedelta(days=10),
        monday + dt.timedelta(days=30),
        TimeUnit.week.as_timedelta(),
    )
    assert [s.start.weekday() for s in spans] == [0, 0]
    assert spans[0].start == monday


def test_the_range_stops_at_now() -> None:
    now = dt.datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    spans = buckets(
        now - dt.timedelta(hours=2), now + dt.timedelta(days=365), now, TimeUnit.hour.as_timedelta()
    )
    assert len(spans) == 3
    assert spans[-1].start == now


def test_fractional_intervals_and_dates_before_the_pivot() -> None:
    delta = TimeUnit.minute.as_timedelta(0.5)
    assert bucket_index(PIVOT + dt.timedelta(seconds=45), delta) == 1
    assert bucket_index(PIVOT - dt.timedelta(seconds=1), delta) == -1


def test_too_many_buckets_is_refused() -> None:
    now = dt.datetime(2026, 1, 10, tzinfo=UTC)
    with pytest.raises(InvalidCountRequest, match="too many"):
        buckets(now - dt.timedelta(days=30), now, now, TimeUnit.minute.as_timedelta())
