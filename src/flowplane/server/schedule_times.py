"""When a schedule fires within a window: the one function the server expands schedules with.

Kept behind :func:`schedule_times` so the scheduler and ``/deployments/{id}/schedule``
can later share the pure schedule math of ``flowplane.core`` without other changes.
Cron and RRule times are computed in the schedule's time zone (wall-clock across DST);
intervals of whole days keep their wall-clock time too, shorter ones are absolute.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from flowplane.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

UTC = dt.timezone.utc
_DAY = dt.timedelta(days=1)


def _zone(name: str | None) -> dt.tzinfo:
    return ZoneInfo(name) if name and name != "UTC" else UTC


def _interval_times(s: IntervalSchedule, start: dt.datetime) -> Iterator[dt.datetime]:
    zone = _zone(s.timezone)
    anchor = s.anchor_date.astimezone(zone)
    if s.interval % _DAY == dt.timedelta(0):
        # Whole days: step the local wall-clock date, so 09:00 stays 09:00 across DST.
        days = s.interval.days
        wall = anchor.replace(tzinfo=None)
        local_start = start.astimezone(zone).replace(tzinfo=None)
        k = max(0, math.ceil((local_start - wall) / s.interval)) if local_start > wall else 0
        current = wall + k * s.interval
        while True:
            when = current.replace(tzinfo=zone)
            if when >= start:
                yield when.astimezone(UTC)
            current += dt.timedelta(days=days)
    step = s.interval
    k = max(0, math.ceil((start - anchor) / step)) if start > anchor else 0
    current = anchor + k * step
    while True:
        yield current.astimezone(UTC)
        current += step


def _cron_times(s: CronSchedule, start: dt.datetime) -> Iterator[dt.datetime]:
    from croniter import croniter

    zone = _zone(s.timezone)
    base = start.astimezone(zone) - dt.timedelta(microseconds=1)
    it = croniter(s.cron, base, day_or=s.day_or)
    while True:
        yield it.get_next(dt.datetime).astimezone(UTC)


def _rrule_times(s: RRuleSchedule, start: dt.datetime) -> Iterator[dt.datetime]:
    from dateutil import rrule

    zone = _zone(s.timezone)
    parsed = rrule.rrulestr(s.rrule, cache=False)
    if "DTSTART" not in s.rrule.upper():
        parsed = rrule.rrulestr(s.rrule, dtstart=start.astimezone(zone), cache=False)
    rule = parsed
    after = start.astimezone(zone)
    if getattr(rule, "_dtstart", None) is not None and rule._dtstart.tzinfo is None:  # type: ignore[union-attr]
        after = after.replace(tzinfo=None)
    current = rule.after(after, inc=True)
    while current is not None:
        aware = current if current.tzinfo else current.replace(tzinfo=zone)
        yield aware.astimezone(UTC)
        current = rule.after(current, inc=False)


def schedule_times(
    schedule: IntervalSchedule | CronSchedule | RRuleSchedule,
    start: dt.datetime,
    end: dt.datetime | None = None,
    *,
    max_runs: int = 100,
    min_runs: int = 0,
    min_until: dt.datetime | None = None,
) -> list[dt.datetime]:
    """The times ``schedule`` fires at from ``start`` (inclusive), in UTC.

    Stops at ``max_runs`` times or past ``end``; but goes past ``end`` until it has
    ``min_runs`` times and has reached ``min_until`` (Prefect's scheduler semantics).
    """
    if isinstance(schedule, CronSchedule):
        times = _cron_times(schedule, start)
    elif isinstance(schedule, RRuleSchedule):
        times = _rrule_times(schedule, start)
    else:
        times = _interval_times(schedule, start)
    out: list[dt.datetime] = []
    for when in times:
        if len(out) >= max_runs:
            break
        beyond_end = end is not None and when > end
        if beyond_end and len(out) >= min_runs and (min_until is None or when > min_until):
            break
        out.append(when)
    return out
