"""Schedule math: cron, interval and rrule fire times across DST, catch-up and materialization."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from flowplane.core.schedules import (
    CatchUp,
    CronSpec,
    Horizon,
    IntervalSpec,
    RRuleSpec,
    ScheduleError,
    catch_up,
    iter_times,
    next_times,
    spec_from_wire,
    times_between,
    times_to_schedule,
)

UTC = timezone.utc
NY = "America/New_York"
LONDON = "Europe/London"
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(times: list[datetime], tz: str) -> list[str]:
    """Times as local wall clock with offset, e.g. ``03-10 03:00-0400``."""
    return [t.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M%z") for t in times]


def gaps(times: list[datetime]) -> set[timedelta]:
    return {b - a for a, b in zip(times, times[1:], strict=False)}


# --- cron ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "tz", "start", "end", "expected"),
    [
        # US spring forward (2024-03-10, 02:00 -> 03:00): the 02:00 run happens at the jump.
        (
            "0 2 * * *",
            NY,
            utc(2024, 3, 8),
            utc(2024, 3, 12),
            ["03-08 02:00-0500", "03-09 02:00-0500", "03-10 03:00-0400", "03-11 02:00-0400"],
        ),
        # US fall back (2024-11-03, 02:00 -> 01:00): 01:30 happens twice, the run once.
        (
            "30 1 * * *",
            NY,
            utc(2024, 11, 2),
            utc(2024, 11, 5),
            ["11-02 01:30-0400", "11-03 01:30-0400", "11-04 01:30-0500"],
        ),
        # 02:00 on fall-back day exists once (after the repeat): no duplicate, no skip.
        (
            "0 2 * * *",
            NY,
            utc(2024, 11, 2),
            utc(2024, 11, 5),
            ["11-02 02:00-0400", "11-03 02:00-0500", "11-04 02:00-0500"],
        ),
        # EU spring forward (2024-03-31, 01:00 UTC): 01:30 London does not exist.
        (
            "30 1 * * *",
            LONDON,
            utc(2024, 3, 30),
            utc(2024, 4, 2),
            ["03-30 01:30+0000", "03-31 02:00+0100", "04-01 01:30+0100"],
        ),
        # EU fall back (2024-10-27): 02:30 Berlin happens twice, the run once.
        (
            "30 2 * * *",
            BERLIN,
            utc(2024, 10, 26),
            utc(2024, 10, 29),
            ["10-26 02:30+0200", "10-27 02:30+0200", "10-28 02:30+0100"],
        ),
        # A 09:00 daily cron keeps 09:00 local on both sides of the change.
        (
            "0 9 * * *",
            NY,
            utc(2024, 3, 9),
            utc(2024, 3, 12),
            ["03-09 09:00-0500", "03-10 09:00-0400", "03-11 09:00-0400"],
        ),
    ],
)
def test_fixed_time_crons_across_dst(
    expr: str, tz: str, start: datetime, end: datetime, expected: list[str]
) -> None:
    assert local(times_between(CronSpec(expr, tz), start, end), tz) == expected


def test_every_15_minutes_keeps_15_real_minutes_across_spring_forward() -> None:
    times = times_between(CronSpec("*/15 * * * *", NY), utc(2024, 3, 10, 5), utc(2024, 3, 10, 9))
    assert gaps(times) == {timedelta(minutes=15)}
    assert len(times) == 16
    assert "03-10 01:45-0500" in local(times, NY) and "03-10 03:00-0400" in local(times, NY)


def test_every_15_minutes_keeps_15_real_minutes_across_fall_back() -> None:
    times = times_between(CronSpec("*/15 * * * *", NY), utc(2024, 11, 3, 4), utc(2024, 11, 3, 8))
    assert gaps(times) == {timedelta(minutes=15)}
    assert len(times) == 16
    shown = local(times, NY)
    assert shown.count("11-03 01:15-0400") == 1 and shown.count("11-03 01:15-0500") == 1


def test_every_30_minutes_in_berlin_across_eu_fall_back() -> None:
    times = times_between(
        CronSpec("*/30 * * * *", BERLIN), utc(2024, 10, 26, 23), utc(2024, 10, 27, 3)
    )
    assert gaps(times) == {timedelta(minutes=30)}
    assert len(times) == 8


def test_hourly_cron_fires_each_real_hour_through_fall_back() -> None:
    times = times_between(CronSpec("0 * * * *", NY), utc(2024, 11, 3, 4), utc(2024, 11, 3, 8))
    assert local(times, NY) == [
        "11-03 00:00-0400",
        "11-03 01:00-0400",
        "11-03 01:00-0500",
        "11-03 02:00-0500",
    ]


@pytest.mark.parametrize(
    ("day_or", "expected_days"),
    [
        # AND: the second Friday of each month (2024-02-09, 2024-03-08).
        (False, [9]),
        # OR: days 8-14, and every Friday.
        (True, [2, 8, 9, 10, 11, 12, 13, 14, 16, 23]),
    ],
)
def test_cron_day_or(day_or: bool, expected_days: list[int]) -> None:
    spec = CronSpec("0 9 8-14 * 5", "UTC", day_or=day_or)
    times = times_between(spec, utc(2024, 2, 1), utc(2024, 2, 24))
    days = [t.day for t in times]
    assert days == expected_days
    if not day_or:
        march = times_between(spec, utc(2024, 3, 1), utc(2024, 4, 1))
        assert [t.day for t in march] == [8]


def test_cron_in_a_timezone_returns_utc_instants() -> None:
    times = next_times(CronSpec("0 9 * * *", "Asia/Kolkata"), utc(2024, 1, 1), 2)
    assert times == [utc(2024, 1, 1, 3, 30), utc(2024, 1, 2, 3, 30)]
    assert all(t.tzinfo is UTC for t in times)


def test_window_is_half_open_and_next_times_is_strict() -> None:
    spec = CronSpec("0 * * * *")
    assert times_between(spec, utc(2024, 1, 1, 1), utc(2024, 1, 1, 3)) == [
        utc(2024, 1, 1, 1),
        utc(2024, 1, 1, 2),
    ]
    assert next_times(spec, utc(2024, 1, 1, 1), 2) == [utc(2024, 1, 1, 2), utc(2024, 1, 1, 3)]
    assert times_between(spec, utc(2024, 1, 1, 1), utc(2024, 1, 1, 9), limit=3) == [
        utc(2024, 1, 1, 1),
        utc(2024, 1, 1, 2),
        utc(2024, 1, 1, 3),
    ]


def test_cron_with_seconds_and_keywords() -> None:
    assert next_times(CronSpec("@daily"), utc(2024, 1, 1, 12), 1) == [utc(2024, 1, 2)]
    assert len(next_times(CronSpec("@hourly", NY), utc(2024, 11, 3, 4, 30), 3)) == 3


def test_impossible_cron_ends_instead_of_looping() -> None:
    assert next_times(CronSpec("0 0 30 2 *"), utc(2024, 1, 1), 3) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: CronSpec("not a cron"),
        lambda: CronSpec("0 25 * * *"),
        lambda: CronSpec("0 9 * * *", "Mars/Olympus"),
        lambda: IntervalSpec(timedelta(0), utc(2024, 1, 1)),
        lambda: RRuleSpec("RRULE:FREQ=SOMETIMES"),
    ],
)
def test_bad_schedules_raise_schedule_error(make: object) -> None:
    with pytest.raises(ScheduleError):
        make()  # type: ignore[operator]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ScheduleError, match="timezone-aware"):
        next_times(CronSpec("0 * * * *"), datetime(2024, 1, 1), 1)


# --- intervals --------------------------------------------------------------------------------


def test_daily_interval_keeps_local_wall_time_across_us_changes() -> None:
    spec = IntervalSpec(timedelta(days=1), datetime(2024, 1, 1, 9), NY)
    spring = times_between(spec, utc(2024, 3, 9), utc(2024, 3, 12))
    assert local(spring, NY) == ["03-09 09:00-0500", "03-10 09:00-0400", "03-11 09:00-0400"]
    fall = times_between(spec, utc(2024, 11, 2), utc(2024, 11, 5))
    assert local(fall, NY) == ["11-02 09:00-0400", "11-03 09:00-0500", "11-04 09:00-0500"]


def test_weekly_interval_in_berlin_keeps_wall_time() -> None:
    spec = IntervalSpec(timedelta(weeks=1), datetime(2024, 3, 4, 8, 15), BERLIN)
    times = times_between(spec, utc(2024, 3, 20), utc(2024, 4, 10))
    assert local(times, BERLIN) == ["03-25 08:15+0100", "04-01 08:15+0200", "04-08 08:15+0200"]


def test_day_and_a_half_interval_steps_on_the_wall_clock() -> None:
    spec = IntervalSpec(timedelta(days=1, hours=12), datetime(2024, 3, 8, 0), NY)
    times = times_between(spec, utc(2024, 3, 8), utc(2024, 3, 13))
    assert local(times, NY) == [
        "03-08 00:00-0500",
        "03-09 12:00-0500",
        "03-11 00:00-0400",
        "03-12 12:00-0400",
    ]


def test_hourly_interval_is_real_time_so_fall_back_shows_one_am_twice() -> None:
    spec = IntervalSpec(timedelta(hours=1), datetime(2024, 1, 1), NY)
    times = times_between(spec, utc(2024, 11, 3, 4), utc(2024, 11, 3, 8))
    assert local(times, NY) == [
        "11-03 00:00-0400",
        "11-03 01:00-0400",
        "11-03 01:00-0500",
        "11-03 02:00-0500",
    ]
    assert gaps(times) == {timedelta(hours=1)}


def test_short_interval_aligns_to_its_anchor_both_sides() -> None:
    spec = IntervalSpec(timedelta(minutes=7), utc(2024, 1, 1, 0, 3))
    assert next_times(spec, utc(2024, 1, 1, 1), 2) == [
        utc(2024, 1, 1, 1, 6),
        utc(2024, 1, 1, 1, 13),
    ]
    # The schedule extends before its anchor too.
    assert next_times(spec, utc(2023, 12, 31, 23, 50), 2) == [
        utc(2023, 12, 31, 23, 56),
        utc(2024, 1, 1, 0, 3),
    ]


def test_interval_anchor_zone_and_exact_start_is_included() -> None:
    anchor = datetime(2024, 6, 1, 6, tzinfo=ZoneInfo(LONDON))
    spec = IntervalSpec(timedelta(days=1), anchor)
    assert times_between(spec, anchor, anchor + timedelta(days=1, seconds=1)) == [
        anchor.astimezone(UTC),
        (anchor + timedelta(days=1)).astimezone(UTC),
    ]
    # In winter the 06:00 London run is 06:00 UTC, in summer 05:00 UTC.
    assert next_times(spec, utc(2024, 12, 1), 1) == [utc(2024, 12, 1, 6)]


def test_daily_interval_anchored_in_the_skipped_hour_moves_forward_that_day_only() -> None:
    spec = IntervalSpec(timedelta(days=1), datetime(2024, 3, 1, 2, 30), NY)
    times = times_between(spec, utc(2024, 3, 9), utc(2024, 3, 12))
    assert local(times, NY) == ["03-09 02:30-0500", "03-10 03:30-0400", "03-11 02:30-0400"]


# --- rrule ---------------------------------------------------------------------------------------


def test_rrule_daily_in_timezone_keeps_wall_time_and_count() -> None:
    spec = RRuleSpec("DTSTART:20240308T090000\nRRULE:FREQ=DAILY;COUNT=4", NY)
    times = times_between(spec, utc(2024, 3, 1), utc(2024, 4, 1))
    assert local(times, NY) == [
        "03-08 09:00-0500",
        "03-09 09:00-0500",
        "03-10 09:00-0400",
        "03-11 09:00-0400",
    ]
    # COUNT counts from DTSTART, not from the window's start.
    assert len(times_between(spec, utc(2024, 3, 10), utc(2024, 4, 1))) == 2


def test_rrule_with_tzid_and_utc_until() -> None:
    spec = RRuleSpec(
        "DTSTART;TZID=Europe/Berlin:20240301T090000\nRRULE:FREQ=DAILY;UNTIL=20240402T000000Z"
    )
    times = next_times(spec, utc(2024, 3, 29), 10)
    assert local(times, BERLIN) == [
        "03-29 09:00+0100",
        "03-30 09:00+0100",
        "03-31 09:00+0200",
        "04-01 09:00+0200",
    ]


def test_rrule_naive_until_is_local_and_bare_rule_uses_default_start() -> None:
    spec = RRuleSpec(
        "DTSTART:20240101T120000\nRRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20240115T120000", NY
    )
    assert local(next_times(spec, utc(2023, 12, 1), 5), NY) == [
        "01-01 12:00-0500",
        "01-08 12:00-0500",
        "01-15 12:00-0500",
    ]
    bare = RRuleSpec("RRULE:FREQ=MONTHLY;BYMONTHDAY=15")
    assert next_times(bare, utc(2024, 5, 20), 1) == [utc(2024, 6, 15)]


def test_rrule_exdate_is_left_out() -> None:
    spec = RRuleSpec(
        "DTSTART:20240101T000000\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE:20240102T000000", "UTC"
    )
    assert next_times(spec, utc(2023, 1, 1), 5) == [utc(2024, 1, 1), utc(2024, 1, 3)]


def test_iter_times_is_ascending_without_duplicates() -> None:
    spec = CronSpec("0,30 1,2 * * *", NY)
    times = list(
        itertools_take(iter_times(spec, utc(2024, 3, 9)), 12)
    )  # crosses the spring-forward day
    assert times == sorted(set(times))
    assert "03-10 03:00-0400" in local(times, NY)


def itertools_take(it: object, n: int) -> list[datetime]:
    import itertools

    return list(itertools.islice(it, n))  # type: ignore[call-overload]


# --- catch-up ------------------------------------------------------------------------------------


def test_catch_up_skip_runs_nothing_missed() -> None:
    spec = CronSpec("0 * * * *")
    assert catch_up(spec, utc(2024, 1, 1), utc(2024, 1, 2), CatchUp.SKIP) == []


def test_catch_up_run_missed_is_bounded_and_keeps_the_latest() -> None:
    spec = CronSpec("0 * * * *")
    missed = catch_up(spec, utc(2024, 1, 1), utc(2024, 1, 1, 5, 30), "run_missed", max_missed=10)
    assert missed == [utc(2024, 1, 1, h) for h in (1, 2, 3, 4, 5)]
    bounded = catch_up(spec, utc(2024, 1, 1), utc(2024, 1, 2), "run_missed", max_missed=3)
    assert bounded == [utc(2024, 1, 1, 21), utc(2024, 1, 1, 22), utc(2024, 1, 1, 23)]


def test_catch_up_edges() -> None:
    spec = CronSpec("0 * * * *")
    # Never scheduled before: nothing was missed.
    assert catch_up(spec, None, utc(2024, 1, 2), "run_missed") == []
    # A run due exactly now is not missed (it is the scheduler's to create).
    assert catch_up(spec, utc(2024, 1, 1, 1), utc(2024, 1, 1, 2), "run_missed") == []
    with pytest.raises(ScheduleError, match="catch-up policy"):
        catch_up(spec, utc(2024, 1, 1), utc(2024, 1, 2), "sometimes")
    with pytest.raises(ScheduleError):
        catch_up(spec, utc(2024, 1, 1), utc(2024, 1, 2), "run_missed", max_missed=-1)


# --- materialization -------------------------------------------------------------------------------


def test_scheduler_takes_min_runs_and_min_time() -> None:
    now = utc(2024, 1, 1)
    # Every minute: three runs are not an hour ahead, so it continues to the hour.
    assert len(times_to_schedule(CronSpec("* * * * *"), now)) == 61
    # Daily: three runs reach past an hour.
    assert times_to_schedule(CronSpec("0 0 * * *"), now) == [
        utc(2024, 1, 1),
        utc(2024, 1, 2),
        utc(2024, 1, 3),
    ]


def test_scheduler_horizon_wins_over_min_runs() -> None:
    horizon = Horizon(min_runs=5, max_time=timedelta(days=70))
    times = times_to_schedule(CronSpec("0 0 1 * *"), utc(2024, 1, 1, 12), horizon=horizon)
    assert times == [utc(2024, 2, 1), utc(2024, 3, 1)]


def test_scheduler_max_runs_and_schedule_bound() -> None:
    spec = CronSpec("* * * * *")
    horizon = Horizon(max_runs=10, min_time=timedelta(days=1))
    assert len(times_to_schedule(spec, utc(2024, 1, 1), horizon=horizon)) == 10
    assert len(times_to_schedule(spec, utc(2024, 1, 1), horizon=horizon, max_scheduled_runs=4)) == 4


def test_scheduler_leaves_out_existing_runs() -> None:
    now = utc(2024, 1, 1)
    spec = CronSpec("0 0 * * *", NY)
    first = times_to_schedule(spec, now)
    again = times_to_schedule(
        spec, now, existing=[first[0].astimezone(ZoneInfo(NY)), first[1]]
    )  # compared as instants
    assert again == first[2:]


# --- the wire shapes ---------------------------------------------------------------------------


def test_specs_from_prefect_wire_schedules() -> None:
    assert spec_from_wire({"cron": "0 9 * * *", "timezone": NY, "day_or": False}) == CronSpec(
        "0 9 * * *", NY, day_or=False
    )
    interval = spec_from_wire(
        {"interval": 3600.0, "anchor_date": "2024-01-01T00:00:00Z", "timezone": "UTC"}
    )
    assert interval == IntervalSpec(timedelta(hours=1), utc(2024, 1, 1), "UTC")
    assert spec_from_wire({"rrule": "RRULE:FREQ=DAILY", "timezone": None}) == RRuleSpec(
        "RRULE:FREQ=DAILY"
    )


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"interval": 60},
        {"interval": "soon", "anchor_date": "2024-01-01T00:00:00Z"},
        {"interval": 60, "anchor_date": "yesterday"},
        {"cron": "nope"},
    ],
)
def test_bad_wire_schedules(data: dict) -> None:
    with pytest.raises(ScheduleError):
        spec_from_wire(data)


@pytest.mark.parametrize(
    "rule",
    [
        "DTSTART:20200101T000700\nRRULE:FREQ=MINUTELY;INTERVAL=13",
        "DTSTART:20200102T093000\nRRULE:FREQ=HOURLY;INTERVAL=5;BYMINUTE=0,30",
        "DTSTART:20200103T090000\nRRULE:FREQ=DAILY;INTERVAL=3;BYHOUR=9,21",
        "DTSTART:20200106T080000\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;WKST=SU",
        "DTSTART:20200101T020000\nRRULE:FREQ=DAILY;BYMONTH=3,11",
        "DTSTART:20200101T120000\nRRULE:FREQ=DAILY;BYDAY=FR;BYMONTHDAY=13",
        "DTSTART:20200101T100000\nRRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        "DTSTART:20200101T000000\nRRULE:FREQ=DAILY;COUNT=2000",
    ],
)
@pytest.mark.parametrize("start", [utc(2024, 3, 10, 5), utc(2024, 11, 3, 5, 30), utc(2025, 6, 1)])
def test_rrule_shortcut_matches_walking_from_dtstart(rule: str, start: datetime) -> None:
    from dateutil import rrule as du

    parsed = du.rrulestr(rule)
    tz = ZoneInfo(NY)
    localized = parsed.replace(dtstart=parsed._dtstart.replace(tzinfo=tz))
    expected = []
    for when in localized.xafter(start - timedelta(days=2)):
        instant = when.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if instant >= start:
            expected.append(instant)
        if len(expected) == 12:
            break
    assert list(itertools_take(iter_times(RRuleSpec(rule, NY), start), 12)) == expected
