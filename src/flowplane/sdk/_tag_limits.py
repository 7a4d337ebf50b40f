"""Task-run tag concurrency limits in the engine: a tagged task takes a slot on each ``tag:<tag>`` limit before it runs.

Untagged tasks never get here. For tagged ones, the answer "none of these tags has
a limit" is remembered per API and tag set for :data:`NO_LIMITS_TTL` seconds, so a
flow of many tagged tasks without limits asks once, not once per task (a limit
created meanwhile applies within that time). When limits exist, the slots are held
under a lease (renewed in the background, freed by the server if the process dies)
from before the first attempt until the run is final, retries included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowplane.core.states import StateType
from flowplane.sdk import _api
from flowplane.sdk._concurrency import (
    Acquired,
    LeaseKeeper,
    acquire_steps,
    long_poll_for,
    release_steps,
)
from flowplane.sdk._engine import drive_sync

if TYPE_CHECKING:
    from flowplane.sdk._records import TaskRunRecord

#: How long "these tags have no limits" is believed without asking again.
NO_LIMITS_TTL = 5.0
#: The lease a task run's tag slots are held under (renewed every third of it).
TASK_LEASE_SECONDS = 60.0

_no_limits: dict[tuple[str, frozenset[str]], float] = {}
_lock = threading.Lock()


def _key(settings: Any, tags: list[str]) -> tuple[str, frozenset[str]]:
    return (_api.target_key(settings), frozenset(tags))


def maybe_limited(tags: list[str]) -> bool:
    """False when these tags are known (recently) to have no limits: no request needed."""
    expires = _no_limits.get(_key(_api.current_settings(), tags))
    return expires is None or expires < time.monotonic()


def forget() -> None:
    """Drop what is remembered about tags without limits (tests; after creating a limit)."""
    with _lock:
        _no_limits.clear()


class TagSlots:
    """The slots a task run holds on its tags' limits, and the lease keeper renewing them."""

    def __init__(self, acquired: Acquired, keeper: LeaseKeeper | None, settings: Any) -> None:
        self.acquired = acquired
        self.keeper = keeper
        self.settings = settings

    def release(self) -> None:
        if self.keeper is not None:
            self.keeper.stop()
        client, owned = _api.sync_client(self.settings)
        try:
            drive_sync(release_steps(self.acquired), client)
        finally:
            if owned:
                client.close()


def acquire(record: TaskRunRecord) -> TagSlots | None:
    """Take a slot on each of the run's tag limits, waiting (as ``AwaitingConcurrencySlot``) while full.

    Returns:
        The held slots, or ``None`` when no tag has a limit.
    """
    settings = _api.current_settings()
    names = [f"tag:{tag}" for tag in record.tags]
    emitted = False

    def awaiting() -> None:
        nonlocal emitted
        emitted = True
        record.writer.emit_event(
            record.set_state(
                StateType.PENDING,
                "AwaitingConcurrencySlot",
                message=f"Waiting for a concurrency slot on {', '.join(record.tags)}",
            )
        )

    client, owned = _api.sync_client(settings)
    try:
        acquired = drive_sync(
            acquire_steps(
                names,
                1,
                lease_duration=TASK_LEASE_SECONDS,
                holder={"type": "task_run", "id": record.id},
                on_refused=awaiting,
                quiet=True,
                long_poll=long_poll_for(settings),
            ),
            client,
        )
    finally:
        if owned:
            client.close()
    if not acquired.limits:
        with _lock:
            if len(_no_limits) > 1024:
                _no_limits.clear()
            _no_limits[_key(settings, record.tags)] = time.monotonic() + NO_LIMITS_TTL
        return None
    keeper = None
    if acquired.lease_id is not None:
        keeper = LeaseKeeper(
            acquired.lease_id, TASK_LEASE_SECONDS, lambda: _api.sync_client(settings)
        ).start()
    return TagSlots(acquired, keeper, settings)


def release(slots: TagSlots | None, log: Callable[[str], None] | None = None) -> None:
    """Give the slots back; a failure is logged, never raised over the run's own outcome."""
    if slots is None:
        return
    try:
        slots.release()
    except Exception as exc:  # the lease lapses on the server anyway
        if log is not None:
            log(f"Could not release concurrency slots: {exc}")
