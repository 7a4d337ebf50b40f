"""Schedule math: the fire times of cron, interval and rrule schedules, DST included; pure.

Nothing here reads the clock: every function takes the times it works with. Times
come back as aware UTC datetimes in ascending order, without duplicates.

How daylight saving time is handled (the rules a newcomer has to know):

* **Cron** expressions are evaluated on the local wall clock of the schedule's timezone.
  A cron that names its hours (``0 2 * * *``, ``30 1 * * 1-5``) fires once per matching
  wall-clock time: when clocks spring forward past it, it fires at the moment the clocks
  jump (a 02:00 daily run happens at 03:00 that day, not never); when clocks fall back
  and the time occurs twice, it fires at the first occurrence only. A cron whose hour
  field is a wildcard (``*/15 * * * *``, ``0 * * * *``) fires at every real occurrence
  of its wall-clock times: the skipped hour has none, the repeated hour has two, so
  ``*/15`` keeps firing every 15 real minutes across both changes.
* **Intervals** of a day or more are steps on the local wall clock, so they keep the
  anchor's time of day (a daily 09:00 stays at 09:00 through DST); shorter intervals are fixed amounts of real time (hourly fires
  every real hour, so the repeated hour shows 01:00 twice), as Prefect documents.
* **RRules** are calendar rules on the local wall clock (RFC 5545, via dateutil): a daily
  09:00 rule stays at 09:00 local; a time that does not exist that day is moved forward
  by the gap; an ambiguous one means its first occurrence.

Beyond Prefect: :func:`catch_up` decides what to do about times missed while nothing was
scheduling (skip them or run them, bounded), and :func:`times_to_schedule` decides which
times the scheduler materializes as runs (Prefect's min/max runs and horizon semantics).
"""

from __future__ import annotations

import enum
import functools
import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = timezone.utc

#: Candidate times examined per request before giving up (a rule that never fires again).
MAX_ITERATIONS = 10_000
#: The default DTSTART of an rrule that names none (Prefect uses the same date).
DEFAULT_RRULE_START = datetime(2020, 1, 1)
_DAY = 86_400.0


class ScheduleError(ValueError):
    """A schedule description that cannot be evaluated (bad cron, rrule or timezone)."""


def zone(name: str | None) -> tzinfo:
    """The IANA timezone ``name`` (UTC when None); raises :class:`ScheduleError` if unknown."""
    if name is None or name in ("UTC", "Etc/UTC", "utc"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"Unknown timezone {name!r}.") from exc


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ScheduleError("Times given to schedule math must be timezone-aware.")
    return value.astimezone(UTC)


# --- resolving local wall-clock times ---------------------------------------------------------


def _instants(naive: datetime, tz: tzinfo) -> tuple[datetime, ...]:
    """Every UTC instant at which the local clock of ``tz`` shows ``naive`` (0, 1 or 2)."""
    found = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == naive and instant not in found:
            found.append(instant)
    return tuple(sorted(found))


def _gap_end(naive: datetime, tz: tzinfo) -> datetime:
    """For a local time that does not exist (clocks jumped over it): the instant of the jump."""
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)  # before the jump
    high = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)  # after it
    low, high = min(low, high), max(low, high)
    before = low.astimezone(tz).utcoffset()
    # Transitions fall on whole seconds: bisect the offset change between the two readings.
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high


def _local_to_utc(naive: datetime, tz: tzinfo) -> datetime:
    """Wall-clock time to an instant: the first occurrence, or moved forward by a gap."""
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


# --- schedule descriptions ----------------------------------------------------------------------


@dataclass(frozen=True)
class CronSpec:
    """A cron expression on the wall clock of ``timezone``.

    ``day_or`` True joins day-of-month and day-of-week with OR (classic cron), False
    with AND (``0 9 8-14 * 5``: the second Friday of each month).
    """

    cron: str
    timezone: str | None = None
    day_or: bool = True

    def __post_init__(self) -> None:
        from croniter import croniter

        if not croniter.is_valid(self.cron):
            raise ScheduleError(f"Invalid cron string {self.cron!r}.")
        zone(self.timezone)

    @property
    def wildcard_hours(self) -> bool:
        """Whether the hour field fires in every hour (``*``, ``*/n``): interval-like crons."""
        fields = self.cron.split()
        if len(fields) < 5:  # @hourly, @daily, ... keywords
            return self.cron.strip().lower() == "@hourly"
        return fields[1].startswith("*")


@dataclass(frozen=True)
class IntervalSpec:
    """Every ``interval`` from ``anchor_date`` (in both directions), in ``timezone``.

    Without a timezone, an aware anchor's own zone is used if it is a ``ZoneInfo``,
    else UTC; a naive anchor is read in ``timezone`` (or UTC).
    """

    interval: timedelta
    anchor_date: datetime
    timezone: str | None = None

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise ScheduleError("An interval must be positive.")
        zone(self.timezone)

    def zone(self) -> tzinfo:
        if self.timezone is not None:
            return zone(self.timezone)
        if isinstance(self.anchor_date.tzinfo, ZoneInfo):
            return self.anchor_date.tzinfo
        return UTC

    def anchor(self) -> datetime:
        """The anchor as an aware datetime in the schedule's zone."""
        tz = self.zone()
        if self.anchor_date.tzinfo is None:
            return self.anchor_date.replace(tzinfo=tz)
        return self.anchor_date.astimezone(tz)


@dataclass(frozen=True)
class RRuleSpec:
    """An RFC 5545 rule (``RRULE:...``, optionally with DTSTART, RDATE, EXDATE lines)."""

    rrule: str
    timezone: str | None = None

    def __post_init__(self) -> None:
        self.build()

    def build(self) -> Any:
        """The dateutil rule (or rule set), with its times in the schedule's zone."""
        from dateutil import rrule as du

        try:
            parsed = du.rrulestr(self.rrule, dtstart=DEFAULT_RRULE_START, forceset=True)
        except (ValueError, TypeError) as exc:
            raise ScheduleError(f"Invalid rrule {self.rrule!r}: {exc}") from exc
        tz = zone(self.timezone) if self.timezone else None
        result = du.rruleset()
        for rule in parsed._rrule:
            result.rrule(_localized_rule(rule, tz))
        for when in parsed._rdate:
            result.rdate(_localize(when, tz))
        for rule in parsed._exrule:
            result.exrule(_localized_rule(rule, tz))
        for when in parsed._exdate:
            result.exdate(_localize(when, tz))
        return result


def _localize(when: datetime, tz: tzinfo | None) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=tz or UTC)
    return when.astimezone(tz) if tz is not None else when


def _localized_rule(rule: Any, tz: tzinfo | None) -> Any:
    """``rule`` with an aware DTSTART (in ``tz``, or its own zone, or UTC) and UNTIL to match."""
    start = _localize(rule._dtstart, tz)
    until = rule._until
    if until is not None:
        until = _localize(until, start.tzinfo)
    return rule.replace(dtstart=start, until=until)


ScheduleSpec = CronSpec | IntervalSpec | RRuleSpec


def spec_from_wire(data: Mapping[str, Any]) -> ScheduleSpec:
    """The schedule a Prefect wire schedule describes (a deployment schedule's ``schedule``).

    ``{"cron", "timezone", "day_or"}``, ``{"interval" (seconds), "anchor_date", "timezone"}``
    or ``{"rrule", "timezone"}``; datetimes may be ISO strings.

    Raises:
        ScheduleError: none of the three shapes, or a bad value.
    """
    timezone_name = data.get("timezone")
    if data.get("cron") is not None:
        return CronSpec(str(data["cron"]), timezone_name, bool(data.get("day_or", True)))
    if data.get("rrule") is not None:
        return RRuleSpec(str(data["rrule"]), timezone_name)
    if data.get("interval") is not None:
        interval = data["interval"]
        if not isinstance(interval, timedelta):
            try:
                interval = timedelta(seconds=float(interval))
            except (TypeError, ValueError) as exc:
                raise ScheduleError(f"Invalid interval {data['interval']!r}.") from exc
        anchor = data.get("anchor_date")
        if anchor is None:
            raise ScheduleError("An interval schedule needs an anchor_date.")
        if isinstance(anchor, str):
            try:
                anchor = datetime.fromisoformat(anchor.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ScheduleError(f"Invalid anchor_date {anchor!r}.") from exc
        return IntervalSpec(interval, anchor, timezone_name)
    raise ScheduleError("A schedule needs one of 'cron', 'interval' or 'rrule'.")


# --- fire times ---------------------------------------------------------------------------------


def iter_times(spec: ScheduleSpec, start: datetime) -> Iterator[datetime]:
    """Fire times at or after ``start``, ascending, without duplicates (UTC).

    The iterator ends when the schedule has no more times (an rrule's COUNT or UNTIL),
    or after :data:`MAX_ITERATIONS` candidates.

    Raises:
        ScheduleError: ``start`` is naive.
    """
    start = _utc(start)
    if isinstance(spec, CronSpec):
        times = _cron_times(spec, start)
    elif isinstance(spec, IntervalSpec):
        times = _interval_times(spec, start)
    else:
        times = _rrule_times(spec, start)
    last: datetime | None = None
    for when in itertools.islice(times, MAX_ITERATIONS):
        if when < start or (last is not None and when <= last):
            continue
        last = when
        yield when


def times_between(
    spec: ScheduleSpec, start: datetime, end: datetime, limit: int | None = None
) -> list[datetime]:
    """Fire times in ``[start, end)``, at most ``limit`` of them (UTC, ascending)."""
    end = _utc(end)
    out: list[datetime] = []
    for when in iter_times(spec, start):
        if when >= end or (limit is not None and len(out) >= limit):
            break
        out.append(when)
    return out


def next_times(spec: ScheduleSpec, after: datetime, n: int) -> list[datetime]:
    """The next ``n`` fire times strictly after ``after`` (fewer if the schedule ends)."""
    after = _utc(after)
    return list(itertools.islice((t for t in iter_times(spec, after) if t > after), n))


def _cron_times(spec: CronSpec, start: datetime) -> Iterator[datetime]:
    from croniter import CroniterBadDateError, croniter

    tz = zone(spec.timezone)
    # Near a clock change, later instants can show earlier wall times (the repeated hour):
    # begin a few hours early on the local clock then; callers filter what is too early.
    margin = timedelta(seconds=1)
    if _offset_changes_near(tz, start, _DST_REACH):
        margin += _DST_REACH
    local_start = start.astimezone(tz).replace(tzinfo=None) - margin
    cron = croniter(spec.cron, local_start, day_or=spec.day_or)
    every_occurrence = spec.wildcard_hours
    pending: list[datetime] = []  # instants not yet yielded, as a heap
    for _ in range(MAX_ITERATIONS):
        try:
            naive = cron.get_next(datetime)
        except CroniterBadDateError:
            break
        instants = _instants(naive, tz)
        if not instants:
            if every_occurrence:
                continue  # a wall time inside the skipped hour never happens
            chosen: tuple[datetime, ...] = (_gap_end(naive, tz),)
        elif every_occurrence:
            chosen = instants
        else:
            chosen = instants[:1]
        # Everything queued before this candidate's earliest instant is final.
        while pending and pending[0] <= chosen[0]:
            yield heapq.heappop(pending)
        for instant in chosen:
            heapq.heappush(pending, instant)
    while pending:
        yield heapq.heappop(pending)


#: The farthest a clock change moves local time (no zone shifts by more than 3 hours).
_DST_REACH = timedelta(hours=3)


def _offset_changes_near(tz: tzinfo, when: datetime, reach: timedelta) -> bool:
    """Whether the UTC offset of ``tz`` differs anywhere in ``when`` ± ``reach`` (sampled)."""
    if tz is UTC:
        return False
    offset = when.astimezone(tz).utcoffset()
    step = timedelta(minutes=30)
    probe = when - reach
    while probe <= when + reach:
        if probe.astimezone(tz).utcoffset() != offset:
            return True
        probe += step
    return False


def _interval_times(spec: IntervalSpec, start: datetime) -> Iterator[datetime]:
    anchor = spec.anchor()
    seconds = spec.interval.total_seconds()
    if seconds < _DAY:
        # Fixed real time: jump straight to the first step at or after start.
        step = int((start - anchor).total_seconds() // seconds)
        when = anchor.astimezone(UTC) + spec.interval * step
        while when < start:
            when += spec.interval
        while True:
            yield when
            when += spec.interval
    # A day or more: steps on the local wall clock, so the time of day is kept through DST.
    tz = anchor.tzinfo
    assert tz is not None
    local = anchor.replace(tzinfo=None)
    interval = spec.interval

    def nth(k: int) -> datetime:
        return _local_to_utc(local + interval * k, tz)

    k = int((start - anchor).total_seconds() // seconds) - 1
    while nth(k) >= start:
        k -= 1
    while nth(k) < start:
        k += 1
    while True:
        yield nth(k)
        k += 1


def _rrule_times(spec: RRuleSpec, start: datetime) -> Iterator[datetime]:
    rules = _advanced(_built(spec.rrule, spec.timezone), start)
    for when in rules.xafter(start, inc=True):
        yield _local_to_utc(when.replace(tzinfo=None), when.tzinfo)


@functools.lru_cache(maxsize=1024)
def _built(rrule: str, timezone_name: str | None) -> Any:
    """Parsing once per rule: the scheduler asks about the same rules every pass."""
    return RRuleSpec(rrule, timezone_name).build()


#: Rule frequencies whose periods are fixed lengths of wall-clock time, and those lengths.
_FIXED_PERIODS = {3: timedelta(days=1), 2: timedelta(weeks=1), 4: timedelta(hours=1)}
_FIXED_PERIODS.update({5: timedelta(minutes=1), 6: timedelta(seconds=1)})


def _advanced(rules: Any, start: datetime) -> Any:
    """The rule set with each rule's DTSTART moved forward by whole periods to near ``start``.

    dateutil walks every occurrence from DTSTART, so a minutely rule that began years ago
    is slow. Moving DTSTART by whole periods (INTERVAL x a day, week, hour, minute or
    second of wall-clock time) keeps the lattice of candidate times and every BYxxx
    filter, so the occurrences from the new DTSTART on are the same. Rules with COUNT
    (counted from the real DTSTART) and calendar frequencies (months, years) are kept.
    """
    from dateutil import rrule as du

    moved = False
    result = du.rruleset()
    for rule in rules._rrule:
        period = _FIXED_PERIODS.get(rule._freq)
        if period is not None and rule._count is None:
            step = period * rule._interval
            dtstart = rule._dtstart
            target = start.astimezone(dtstart.tzinfo).replace(tzinfo=None) - timedelta(days=1)
            steps = (target - dtstart.replace(tzinfo=None)) // step
            if steps > 0:
                rule = rule.replace(dtstart=dtstart + step * steps)
                moved = True
        result.rrule(rule)
    if not moved:
        return rules
    for when in rules._rdate:
        result.rdate(when)
    for rule in rules._exrule:
        result.exrule(rule)
    for when in rules._exdate:
        result.exdate(when)
    return result


# --- catching up after downtime -----------------------------------------------------------------


class CatchUp(str, enum.Enum):
    """What to do with fire times that passed while nothing was scheduling."""

    SKIP = "skip"
    RUN_MISSED = "run_missed"


#: Missed runs created at most, by default, when catching up (the most recent ones win).
DEFAULT_MAX_MISSED = 10


def catch_up(
    spec: ScheduleSpec,
    last_scheduled: datetime | None,
    now: datetime,
    policy: CatchUp | str,
    max_missed: int = DEFAULT_MAX_MISSED,
) -> list[datetime]:
    """The missed fire times to run now, after a gap in scheduling.

    Args:
        spec: the schedule.
        last_scheduled: the latest time a run was created for (None: never; nothing is missed).
        now: the current time.
        policy: ``skip`` (nothing: only future times will run) or ``run_missed`` (the
            times in ``(last_scheduled, now)``).
        max_missed: most missed times returned; when more were missed, the most recent win.

    Returns:
        The missed times, ascending (UTC).

    Raises:
        ScheduleError: an unknown policy or a negative bound.
    """
    try:
        policy = CatchUp(policy)
    except ValueError:
        raise ScheduleError(f"Unknown catch-up policy {policy!r}; use 'skip' or 'run_missed'.")
    if max_missed < 0:
        raise ScheduleError("max_missed must not be negative.")
    if policy is CatchUp.SKIP or last_scheduled is None or max_missed == 0:
        return []
    now = _utc(now)
    missed: list[datetime] = []
    for when in iter_times(spec, last_scheduled):
        if when >= now:
            break
        if when > _utc(last_scheduled):
            missed.append(when)
            if len(missed) > max_missed:
                del missed[0]
    return missed


# --- which runs the scheduler creates -----------------------------------------------------------


@dataclass(frozen=True)
class Horizon:
    """How far ahead the scheduler keeps runs (Prefect's scheduler settings)."""

    min_runs: int = 3
    max_runs: int = 100
    min_time: timedelta = timedelta(hours=1)
    max_time: timedelta = timedelta(days=100)


def times_to_schedule(
    spec: ScheduleSpec,
    now: datetime,
    existing: Iterable[datetime] = (),
    horizon: Horizon = Horizon(),
    max_scheduled_runs: int | None = None,
) -> list[datetime]:
    """The fire times to create runs for now, leaving out those that already have one.

    From ``now``, times are taken until both minimums are met (at least ``min_runs``
    times, reaching at least ``now + min_time``), never more than ``max_runs`` (or the
    schedule's own ``max_scheduled_runs``) and never beyond ``now + max_time``. The
    horizon wins over the counts: a monthly schedule with a 100-day horizon gets 3 runs.

    Args:
        spec: the schedule.
        now: the current time.
        existing: fire times that already have a run (compared as instants).
        horizon: the scheduler's bounds.
        max_scheduled_runs: the schedule's own bound, replacing ``horizon.max_runs``.

    Returns:
        The times to create runs for, ascending (UTC).
    """
    now = _utc(now)
    limit = horizon.max_runs if max_scheduled_runs is None else max_scheduled_runs
    end = now + horizon.max_time
    min_until = now + horizon.min_time
    wanted: list[datetime] = []
    for when in iter_times(spec, now):
        if when > end or len(wanted) >= limit:
            break
        wanted.append(when)
        if len(wanted) >= horizon.min_runs and when >= min_until:
            break
    have = {_utc(when) for when in existing}
    return [when for when in wanted if when not in have]
