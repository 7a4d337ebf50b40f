"""Retry policy math: delays from numbers, lists and callables; jitter bounds."""

from __future__ import annotations

import pytest

from flowplane.core.retries import (
    delay_for_retry,
    exponential_delays,
    jittered,
    normalize_delays,
    retries_left,
)


@pytest.mark.parametrize(
    ("spec", "retries", "expected"),
    [
        (None, 3, ()),
        (5, 3, (5.0,)),
        (0.5, 0, (0.5,)),
        ([1, 2, 3], 3, (1.0, 2.0, 3.0)),
        (lambda n: [n, n], 4, (4.0, 4.0)),
    ],
)
def test_normalize_delays(spec: object, retries: int, expected: tuple[float, ...]) -> None:
    assert normalize_delays(spec, retries) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", [-1, [1, -2], list(range(51))])
def test_invalid_delays(spec: object) -> None:
    with pytest.raises(ValueError):
        normalize_delays(spec, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("delays", "retry", "expected"),
    [
        ((), 1, 0.0),
        ((3.0,), 1, 3.0),
        ((3.0,), 5, 3.0),
        ((1.0, 2.0), 1, 1.0),
        ((1.0, 2.0), 2, 2.0),
        ((1.0, 2.0), 9, 2.0),
    ],
)
def test_delay_for_retry_repeats_the_last(
    delays: tuple[float, ...], retry: int, expected: float
) -> None:
    assert delay_for_retry(delays, retry) == expected


def test_exponential_delays() -> None:
    assert exponential_delays(2, 4) == [2, 4, 8, 16]
    assert len(exponential_delays(1, 100)) == 50
    assert exponential_delays(1, 0) == []


@pytest.mark.parametrize("uniform", [0.0, 0.25, 0.5, 0.999])
def test_jitter_stays_within_its_factor(uniform: float) -> None:
    value = jittered(10.0, 0.5, uniform)
    assert 5.0 <= value <= 15.0
    assert jittered(10.0, None, uniform) == 10.0
    assert jittered(0.0, 0.5, uniform) == 0.0


def test_jitter_averages_the_delay() -> None:
    samples = [jittered(10.0, 0.3, i / 1000) for i in range(1000)]
    assert abs(sum(samples) / len(samples) - 10.0) < 0.05


def test_retries_left() -> None:
    assert retries_left(1, 1) and not retries_left(2, 1) and not retries_left(1, 0)
