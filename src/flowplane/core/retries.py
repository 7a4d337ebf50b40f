"""Retry policy math: how long to wait before each retry, with optional jitter; pure, randomness passed in."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Union

#: The most retry delays a policy may list (longer lists are cut).
MAX_RETRY_DELAYS = 50

#: What a user may give as ``retry_delay_seconds``.
DelaySpec = Union[float, int, Sequence[Union[float, int]], Callable[[int], Sequence[float]], None]


def exponential_delays(backoff_factor: float, retries: int) -> list[float]:
    """Delays doubling from ``backoff_factor``: ``factor * 2**n`` for each of ``retries`` retries.

    Args:
        backoff_factor: the delay before the first retry, in seconds.
        retries: how many delays to produce (at most :data:`MAX_RETRY_DELAYS`).

    Returns:
        The delays, in seconds.
    """
    count = max(0, min(retries, MAX_RETRY_DELAYS))
    return [backoff_factor * (2**n) for n in range(count)]


def normalize_delays(spec: DelaySpec, retries: int) -> tuple[float, ...]:
    """Turn a ``retry_delay_seconds`` setting into a tuple of delays.

    Args:
        spec: a number (the same delay for every retry), a sequence (one per retry;
            the last repeats), a callable taking ``retries`` and returning a sequence,
            or ``None`` (no delay).
        retries: the number of retries configured.

    Returns:
        The delays in seconds; empty for no delay.

    Raises:
        ValueError: a delay is negative or the list is longer than :data:`MAX_RETRY_DELAYS`.
    """
    if spec is None:
        return ()
    if callable(spec):
        spec = spec(retries)
    if isinstance(spec, (int, float)):
        values: tuple[float, ...] = (float(spec),)
    else:
        values = tuple(float(v) for v in spec)
        if len(values) > MAX_RETRY_DELAYS:
            raise ValueError(f"Too many retry delays ({len(values)}); at most {MAX_RETRY_DELAYS}.")
    if any(v < 0 or math.isnan(v) for v in values):
        raise ValueError(f"Retry delays must be non-negative numbers, got {list(values)}.")
    return values


def delay_for_retry(delays: Sequence[float], retry_number: int) -> float:
    """The delay before retry ``retry_number`` (1 for the first); lists repeat their last entry."""
    if not delays:
        return 0.0
    index = min(max(retry_number - 1, 0), len(delays) - 1)
    return float(delays[index])


def jittered(delay: float, jitter_factor: float | None, uniform: float) -> float:
    """``delay`` spread by up to ``jitter_factor`` of itself either way, averaging ``delay``.

    Args:
        delay: the configured delay, in seconds.
        jitter_factor: how far the delay may move, as a fraction of it (``None`` or 0: none).
        uniform: a random number in [0, 1) supplied by the caller.

    Returns:
        A delay in ``[delay * (1 - f), delay * (1 + f)]``, never negative.

    Raises:
        ValueError: ``jitter_factor`` is negative.
    """
    if not jitter_factor or delay <= 0:
        return delay
    if jitter_factor < 0:
        raise ValueError("retry_jitter_factor must be >= 0")
    return max(0.0, delay * (1.0 + jitter_factor * (2.0 * uniform - 1.0)))


def retries_left(run_count: int, retries: int) -> bool:
    """Whether a run that has started ``run_count`` times may start again under ``retries``."""
    return run_count <= retries
