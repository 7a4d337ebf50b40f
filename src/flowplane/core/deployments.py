"""Pure rules for deployed runs: parameter merging, worker liveness and concurrency decisions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

#: A worker is ONLINE while its last heartbeat is younger than this many intervals.
MISSED_HEARTBEATS_OFFLINE = 3
#: The heartbeat interval assumed for workers that do not say theirs (Prefect's default).
DEFAULT_HEARTBEAT_SECONDS = 30
#: A deployment is READY while some worker polled for it within this long.
DEPLOYMENT_POLL_WINDOW = timedelta(seconds=60)


def merged_parameters(
    defaults: Mapping[str, Any] | None, given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A run's parameters: the deployment's defaults, overridden key by key by the caller's."""
    return {**(defaults or {}), **(given or {})}


def worker_online(
    last_heartbeat: datetime | None, interval_seconds: int | None, now: datetime
) -> bool:
    """Whether a worker still counts as alive: it beat within a few of its own intervals."""
    if last_heartbeat is None:
        return False
    interval = interval_seconds or DEFAULT_HEARTBEAT_SECONDS
    return now - last_heartbeat < timedelta(seconds=interval * MISSED_HEARTBEATS_OFFLINE)


def recently_polled(last_polled: datetime | None, now: datetime) -> bool:
    """Whether a queue or deployment was polled recently enough to count as READY."""
    return last_polled is not None and now - last_polled < DEPLOYMENT_POLL_WINDOW


class SlotDecision(str, enum.Enum):
    """What to do with a run that wants to start under a deployment concurrency limit."""

    ACCEPT = "ACCEPT"
    WAIT = "WAIT"  # ENQUEUE: back to Scheduled ("AwaitingConcurrencySlot"), retried later
    CANCEL = "CANCEL"  # CANCEL_NEW: the new run is cancelled


def deployment_slot(limit: int | None, active: int, strategy: str | None) -> SlotDecision:
    """Decide for one run given the limit and how many runs of the deployment are active."""
    if limit is None or active < limit:
        return SlotDecision.ACCEPT
    return SlotDecision.CANCEL if strategy == "CANCEL_NEW" else SlotDecision.WAIT


def available_slots(limit: int | None, active: int) -> int | None:
    """Free slots under a pool or queue limit (None: unlimited)."""
    if limit is None:
        return None
    return max(limit - active, 0)
