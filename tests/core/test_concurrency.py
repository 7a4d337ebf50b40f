"""Concurrency-limit arithmetic, table-driven: decay, admission, occupancy, retry delays; the clock is passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from flowplane.core import concurrency as cc
from flowplane.core.concurrency import LimitFacts, Mode

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("since", "expected"),
    [(None, 0.0), (NOW, 0.0), (ago(2.5), 2.5), (NOW + timedelta(seconds=3), 0.0)],
    ids=["never", "now", "past", "clock-stepped-back"],
)
def test_elapsed_seconds(since: datetime | None, expected: float) -> None:
    assert cc.elapsed_seconds(since, NOW) == expected


@pytest.mark.parametrize(
    ("slots", "rate", "elapsed", "expected"),
    [
        (5.0, 0.0, 100.0, 5.0),  # concurrency limits never decay
        (5.0, 1.0, 0.0, 5.0),
        (5.0, 1.0, 2.0, 3.0),
        (5.0, 0.5, 3.0, 3.5),  # the fraction is kept, not floored away
        (5.0, 1.0, 10.0, 0.0),  # never below zero
        (0.0, 2.0, 1.0, 0.0),
        (5.0, 1.0, -3.0, 5.0),  # negative elapsed is no time at all
    ],
)
def test_decay(slots: float, rate: float, elapsed: float, expected: float) -> None:
    assert cc.decay(slots, rate, elapsed) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("decay", "occupancy", "expected"),
    [
        (2.0, 5.0, 2.0),  # rate limits: the slot decay
        (0.0, 4.0, 0.25),  # concurrency limits: one slot per average occupancy
        (0.0, 0.01, 10.0),  # occupancy clamped below at MIN_OCCUPANCY_SECONDS
        (0.0, 600.0, 1 / 30),  # and above at MAX_SLOT_WAIT_SECONDS
    ],
)
def test_denied_decay_rate(decay: float, occupancy: float, expected: float) -> None:
    assert cc.denied_decay_rate(decay, occupancy) == pytest.approx(expected)


def test_at_decays_both_counts_and_moves_the_clock() -> None:
    facts = LimitFacts(
        limit=10,
        active_slots=6.0,
        denied_slots=4.0,
        slot_decay_per_second=0.0,
        avg_slot_occupancy_seconds=2.0,
        slots_updated=ago(3),
    )
    current = cc.at(facts, NOW)
    assert (current.active_slots, current.denied_slots, current.slots_updated) == (6.0, 2.5, NOW)
    rate = cc.at(
        LimitFacts(limit=10, active_slots=6.0, slot_decay_per_second=1.5, slots_updated=ago(2)), NOW
    )
    assert rate.active_slots == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("active", "slots", "limit", "expected"),
    [
        (0.0, 1, 1, True),
        (1.0, 1, 1, False),
        (2.0, 3, 5, True),
        (2.0, 4, 5, False),
        (0.1, 1, 1, False),  # a partly decayed slot is still taken
        (1e-12, 1, 1, True),  # float noise is not a slot
        (0.0, 1, 0, False),
    ],
)
def test_fits(active: float, slots: int, limit: int, expected: bool) -> None:
    assert cc.fits(active, slots, limit) is expected


@pytest.mark.parametrize(
    ("slots", "expected"),
    [(0.0, 0), (1.0, 1), (0.2, 1), (2.9999999999, 3), (3.0000000000001, 3), (-1.0, 0)],
)
def test_whole_slots(slots: float, expected: int) -> None:
    assert cc.whole_slots(slots) == expected


@pytest.mark.parametrize(
    ("limits", "slots", "mode", "problem"),
    [
        ([LimitFacts(limit=2, name="a")], 2, Mode.CONCURRENCY, None),
        ([LimitFacts(limit=2, name="a")], 3, Mode.CONCURRENCY, "greater than the limit"),
        (
            [LimitFacts(limit=2, name="a", active=False)],
            3,
            Mode.CONCURRENCY,
            None,
        ),  # inactive: ignored
        ([LimitFacts(limit=5, name="a")], 1, Mode.RATE_LIMIT, "no decay configured: a"),
        ([LimitFacts(limit=5, name="a", slot_decay_per_second=1.0)], 1, Mode.RATE_LIMIT, None),
        ([], 1, Mode.RATE_LIMIT, None),
    ],
)
def test_request_problem(
    limits: list[LimitFacts], slots: int, mode: Mode, problem: str | None
) -> None:
    found = cc.request_problem(limits, slots, mode)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize(
    ("facts", "slots", "expected"),
    [
        (LimitFacts(limit=1, active_slots=1.0, slots_updated=NOW), 1, True),
        (LimitFacts(limit=3, active_slots=1.0, slots_updated=NOW), 2, False),
        (LimitFacts(limit=3, active_slots=1.0, slots_updated=NOW), 3, True),
        (
            LimitFacts(limit=1, active_slots=1.0, active=False),
            1,
            False,
        ),  # inactive limits refuse nothing
        (
            LimitFacts(limit=1, active_slots=1.0, slot_decay_per_second=1.0, slots_updated=ago(1)),
            1,
            False,
        ),
        (
            LimitFacts(
                limit=1, active_slots=1.0, slot_decay_per_second=1.0, slots_updated=ago(0.5)
            ),
            1,
            True,
        ),
    ],
    ids=["full", "room", "too-many", "inactive", "decayed", "half-decayed"],
)
def test_is_blocking(facts: LimitFacts, slots: int, expected: bool) -> None:
    assert cc.is_blocking(facts, slots, NOW) is expected


@pytest.mark.parametrize(
    ("avg", "occupancy", "limit", "expected"),
    [
        (2.0, 2.0, 1, 2.0),
        (2.0, 6.0, 1, 4.0),  # weight 1/2 for a limit of 1
        (2.0, 6.0, 2, 3.0),  # weight 1/4 for a limit of 2
        (2.0, 0.0, 1, 1.05),  # samples are at least MIN_OCCUPANCY_SECONDS
        (2.0, 6.0, 0, 4.0),  # a limit of 0 weighs like a limit of 1 (no division by zero)
    ],
)
def test_next_average_occupancy(avg: float, occupancy: float, limit: int, expected: float) -> None:
    assert cc.next_average_occupancy(avg, occupancy, limit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("facts", "slots", "expected"),
    [
        (LimitFacts(limit=5, denied_slots=3, slot_decay_per_second=2.0), 1, 1.5),  # queue / rate
        (LimitFacts(limit=2, denied_slots=4, avg_slot_occupancy_seconds=3.0), 1, 6.0),
        (LimitFacts(limit=1, denied_slots=100, avg_slot_occupancy_seconds=3.0), 1, 30.0),  # capped
        (LimitFacts(limit=1, denied_slots=1, avg_slot_occupancy_seconds=600.0), 1, 30.0),
        (
            LimitFacts(limit=4, denied_slots=0, avg_slot_occupancy_seconds=2.0),
            2,
            1.0,
        ),  # at least this request
    ],
)
def test_expected_wait(facts: LimitFacts, slots: int, expected: float) -> None:
    assert cc.expected_wait(facts, slots) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("jitter", "expected"),
    [(0.5, 6.0), (0.0, 4.2), (0.999999, 7.8), (-5.0, 4.2), (7.0, 7.8)],
)
def test_retry_after_takes_the_longest_wait_and_spreads_it(jitter: float, expected: float) -> None:
    slow = LimitFacts(limit=2, denied_slots=4, avg_slot_occupancy_seconds=3.0)  # 6 s
    fast = LimitFacts(limit=5, denied_slots=1, slot_decay_per_second=2.0)  # 0.5 s
    assert cc.retry_after([fast, slow], 1, jitter) == pytest.approx(expected, abs=1e-3)


def test_retry_after_has_a_floor() -> None:
    assert cc.retry_after([], 1, 0.5) == cc.MIN_RETRY_SECONDS
    tiny = LimitFacts(limit=100, denied_slots=1, avg_slot_occupancy_seconds=0.1)
    assert cc.retry_after([tiny], 1, 0.0) == cc.MIN_RETRY_SECONDS


@pytest.mark.parametrize(
    ("name", "tag"), [("tag:etl", "etl"), ("tag:", ""), ("etl", None), ("Tag:etl", None)]
)
def test_tag_names(name: str, tag: str | None) -> None:
    assert cc.tag_of(name) == tag
    if tag:
        assert cc.tag_limit_name(tag) == name
