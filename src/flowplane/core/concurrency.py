"""Concurrency-limit arithmetic: slot decay, admission, occupancy averages and retry delays, all pure.

A limit's occupancy is continuous. A limit with ``slot_decay_per_second = r`` frees
``r`` slots per second of elapsed time (a rate limit); with ``r = 0`` slots are only
freed by releases (a concurrency limit). A request for ``n`` slots fits when the
decayed occupancy plus ``n`` is at most the limit. Keeping the fraction (instead of
flooring the decay and resetting the clock on every write) means clients that poll
more often than one slot's worth of decay still see slots come free.

Denied requests are counted too (``denied_slots``): they decay at the limit's decay
rate, or, for concurrency limits, at one slot per (clamped) average occupancy time.
The queue of denied requests sets how long a refused client is told to wait.

The server's SQL statements mirror :func:`decay`, :func:`denied_decay_rate`,
:func:`fits` and :func:`next_average_occupancy` so that admission is one atomic
UPDATE; a store test checks the SQL against these functions.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

#: Tolerance for comparing decayed (floating point) slot counts with whole limits.
EPSILON = 1e-9
#: The shortest average occupancy a slot is assumed to have (guards divisions).
MIN_OCCUPANCY_SECONDS = 0.1
#: The longest a client is asked to wait for a concurrency (non-decaying) limit.
MAX_SLOT_WAIT_SECONDS = 30.0
#: The shortest Retry-After the server answers.
MIN_RETRY_SECONDS = 0.1
#: The occupancy average weighs the last ``limit * OCCUPANCY_SAMPLES_PER_SLOT`` releases.
OCCUPANCY_SAMPLES_PER_SLOT = 2
#: Retry delays are spread by up to this fraction either way, so refused clients do not return together.
RETRY_JITTER = 0.3
#: Tag concurrency limits are global limits with this name prefix.
TAG_PREFIX = "tag:"


class Mode(str, enum.Enum):
    """How slots are taken: held until released, or taken and left to decay."""

    CONCURRENCY = "concurrency"
    RATE_LIMIT = "rate_limit"


@dataclass(frozen=True)
class LimitFacts:
    """The parts of a limit the arithmetic looks at; counts are as of ``slots_updated``."""

    limit: int
    active: bool = True
    active_slots: float = 0.0
    denied_slots: float = 0.0
    slot_decay_per_second: float = 0.0
    avg_slot_occupancy_seconds: float = 2.0
    slots_updated: datetime | None = None
    name: str = ""


def elapsed_seconds(since: datetime | None, now: datetime) -> float:
    """Seconds from ``since`` to ``now``; never negative (a clock that stepped back counts as zero)."""
    if since is None:
        return 0.0
    return max((now - since).total_seconds(), 0.0)


def decay(slots: float, rate: float, elapsed: float) -> float:
    """``slots`` after ``elapsed`` seconds of decay at ``rate`` slots per second (never below zero)."""
    remaining = slots - rate * max(elapsed, 0.0)
    return remaining if remaining > 0 else 0.0


def clamped_occupancy(avg_slot_occupancy_seconds: float) -> float:
    """The average occupancy bounded to [MIN_OCCUPANCY_SECONDS, MAX_SLOT_WAIT_SECONDS]."""
    return min(max(avg_slot_occupancy_seconds, MIN_OCCUPANCY_SECONDS), MAX_SLOT_WAIT_SECONDS)


def denied_decay_rate(slot_decay_per_second: float, avg_slot_occupancy_seconds: float) -> float:
    """How fast the denied-request count drains: the decay rate, or one slot per average occupancy."""
    if slot_decay_per_second > 0:
        return slot_decay_per_second
    return 1.0 / clamped_occupancy(avg_slot_occupancy_seconds)


def at(facts: LimitFacts, now: datetime) -> LimitFacts:
    """``facts`` with both counts decayed to ``now`` (and ``slots_updated`` moved there)."""
    elapsed = elapsed_seconds(facts.slots_updated, now)
    return replace(
        facts,
        active_slots=decay(facts.active_slots, facts.slot_decay_per_second, elapsed),
        denied_slots=decay(
            facts.denied_slots,
            denied_decay_rate(facts.slot_decay_per_second, facts.avg_slot_occupancy_seconds),
            elapsed,
        ),
        slots_updated=now,
    )


def fits(active_slots: float, slots: int, limit: int) -> bool:
    """Whether ``slots`` more fit under ``limit`` when ``active_slots`` are occupied."""
    return active_slots + slots <= limit + EPSILON


def whole_slots(slots: float) -> int:
    """The whole number of slots a (decayed) count reports: a partly freed slot is still taken."""
    return max(math.ceil(slots - EPSILON), 0)


def request_problem(limits: Sequence[LimitFacts], slots: int, mode: Mode) -> str | None:
    """Why a request for ``slots`` on these limits can never succeed, or ``None`` if it can.

    Only active limits count. Asking for more than a limit holds would wait forever;
    rate limiting needs limits whose slots decay.
    """
    active = [facts for facts in limits if facts.active]
    if any(facts.limit < slots for facts in active):
        return "Slots requested is greater than the limit"
    if mode is Mode.RATE_LIMIT:
        static = [facts.name for facts in active if facts.slot_decay_per_second <= 0]
        if static:
            return (
                "Only concurrency limits with slot decay can be used for rate limiting. "
                f"These limits have no decay configured: {', '.join(static)}"
            )
    return None


def is_blocking(facts: LimitFacts, slots: int, now: datetime) -> bool:
    """Whether this limit refuses ``slots`` more at ``now`` (inactive limits refuse nothing)."""
    return facts.active and not fits(at(facts, now).active_slots, slots, facts.limit)


def next_average_occupancy(
    avg_slot_occupancy_seconds: float, occupancy_seconds: float, limit: int
) -> float:
    """The occupancy average after a release of slots held for ``occupancy_seconds``.

    An exponentially weighted average over about ``limit * OCCUPANCY_SAMPLES_PER_SLOT``
    releases; each sample is at least :data:`MIN_OCCUPANCY_SECONDS`. Every slot of a
    release was held the whole time, so (unlike Prefect) the time is not divided by
    the number of slots: it is the figure the Retry-After estimate needs.
    """
    sample = max(occupancy_seconds, MIN_OCCUPANCY_SECONDS)
    return avg_slot_occupancy_seconds + (sample - avg_slot_occupancy_seconds) / occupancy_weight(
        limit
    )


def occupancy_weight(limit: int) -> int:
    """The divisor of the occupancy average's update for a limit of ``limit`` slots."""
    return max(limit, 1) * OCCUPANCY_SAMPLES_PER_SLOT


def expected_wait(facts: LimitFacts, slots: int) -> float:
    """Seconds until ``slots`` are likely free on a blocking limit, given its queue of denied requests.

    ``facts.denied_slots`` counts this request too. Rate limits free ``r`` slots a
    second; concurrency limits free one slot per average occupancy, spread over the
    limit's slots, and a client is never asked to wait more than
    :data:`MAX_SLOT_WAIT_SECONDS` for them.
    """
    queued = max(facts.denied_slots, float(slots))
    if facts.slot_decay_per_second > 0:
        return queued / facts.slot_decay_per_second
    per_slot = min(max(facts.avg_slot_occupancy_seconds, 0.0), MAX_SLOT_WAIT_SECONDS)
    return min(per_slot * queued / max(facts.limit, 1), MAX_SLOT_WAIT_SECONDS)


def retry_after(blocking_limits: Sequence[LimitFacts], slots: int, jitter: float) -> float:
    """The Retry-After (seconds) for a refused request: the longest expected wait, spread by ``jitter``.

    Args:
        blocking_limits: the limits that refused the request, their denied counts updated.
        slots: the slots requested.
        jitter: a number in [0, 1) (the caller draws it) that spreads the delay by up
            to :data:`RETRY_JITTER` either way.

    Returns:
        Seconds to wait, at least :data:`MIN_RETRY_SECONDS`.
    """
    wait = max((expected_wait(facts, slots) for facts in blocking_limits), default=0.0)
    spread = 1.0 + RETRY_JITTER * (2.0 * min(max(jitter, 0.0), 1.0) - 1.0)
    return round(max(wait * spread, MIN_RETRY_SECONDS), 3)


def tag_limit_name(tag: str) -> str:
    """The global limit that holds the concurrency limit of a task-run tag."""
    return f"{TAG_PREFIX}{tag}"


def tag_of(name: str) -> str | None:
    """The tag a global limit name stands for, or ``None`` if it is not a tag limit."""
    return name[len(TAG_PREFIX) :] if name.startswith(TAG_PREFIX) else None
