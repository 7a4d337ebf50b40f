"""Pure time-bucket arithmetic for ``/events/count-by/time`` (and ``day``).

Buckets are fixed slices of time counted from :data:`PIVOT` (a Monday at midnight
UTC), so a day bucket always starts at midnight and a week bucket on a Monday, and the
same event lands in the same bucket whatever range is asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

PIVOT = datetime(2024, 4, 1, tzinfo=timezone.utc)
MAX_BUCKETS = 1000
MIN_INTERVAL = 0.01


class InvalidCountRequest(ValueError):
    """The requested buckets cannot be produced (too many, or too small)."""


@dataclass(frozen=True)
class Bucket:
    index: int
    start: datetime
    end: datetime  # inclusive: the last microsecond of the bucket


def bucket_index(moment: datetime, delta: timedelta) -> int:
    """The absolute index (from :data:`PIVOT`) of the bucket holding ``moment``."""
    return math.floor((moment - PIVOT) / delta)


def buckets(since: datetime, until: datetime, now: datetime, delta: timedelta) -> list[Bucket]:
    """Every bucket from the one holding ``since`` to the one holding ``min(until, now)``.

    Raises:
        InvalidCountRequest: the range would need more than :data:`MAX_BUCKETS` buckets.
    """
    if delta.total_seconds() < MIN_INTERVAL:
        raise InvalidCountRequest(f"The minimum interval is {MIN_INTERVAL} seconds")
    end = min(until, now)
    if end < since:
        end = since
    first = bucket_index(since, delta)
    last = bucket_index(end, delta)
    count = last - first + 1
    if count > MAX_BUCKETS:
        raise InvalidCountRequest(
            f"The given interval would create {count} buckets, which is too many. Increase "
            f"the interval or shorten the time range to produce {MAX_BUCKETS} buckets or fewer."
        )
    tick = timedelta(microseconds=1)
    return [
        Bucket(index=i, start=PIVOT + delta * i, end=PIVOT + delta * (i + 1) - tick)
        for i in range(first, last + 1)
    ]
