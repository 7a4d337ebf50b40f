"""Taking and giving back concurrency slots, written once as engine steps; ``concurrency.sync`` and ``concurrency.asyncio`` drive them.

Slots are taken through a long-poll: a refused request is held by a flowplane
server until a release frees a slot (or ``LONG_POLL_SECONDS`` pass), so a waiter
gets a freed slot at once instead of after a poll interval. Held slots sit under
a lease that a :class:`LeaseKeeper` thread renews while the block runs; if the
process dies, the lease lapses and the server frees the slots.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from flowplane.exceptions import FlowplaneError, HTTPStatusError, ObjectAlreadyExists
from flowplane.sdk._engine import Api, Sleep

logger = logging.getLogger("flowplane.concurrency")

#: How long one request may be held by the server waiting for a slot.
LONG_POLL_SECONDS = 10.0
#: A 423 that came back much sooner than asked (a server without long-polls) waits this long.
FALLBACK_POLL_SECONDS = 0.5


class ConcurrencySlotAcquisitionError(FlowplaneError):
    """Slots could not be taken: the limits are missing (with ``strict``), invalid, or retries ran out."""


class AcquireConcurrencySlotTimeoutError(TimeoutError):
    """The slots were not free within ``timeout_seconds``."""


@dataclass
class Acquired:
    """Slots taken: on which limits, under which lease (if any), since when."""

    names: list[str]
    slots: int
    limits: list[Any] = field(default_factory=list)
    lease_id: UUID | None = None
    started: float = field(default_factory=time.monotonic)


def long_poll_for(settings: Any) -> float:
    """How long a request may be held by the server: well inside the client's own timeout."""
    timeout = getattr(settings, "api_request_timeout", None) or 60.0
    return max(min(LONG_POLL_SECONDS, timeout / 2), 0.0)


def as_names(names: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if not names:
        return []
    return [names] if isinstance(names, str) else list(names)


def acquire_steps(
    names: list[str],
    slots: int,
    *,
    mode: str = "concurrency",
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float | None = 300,
    strict: bool = False,
    create_if_missing: bool | None = None,
    holder: Any = None,
    on_refused: Callable[[], None] | None = None,
    quiet: bool = False,
    v1_task_run_id: UUID | None = None,
    long_poll: float = LONG_POLL_SECONDS,
) -> Generator[Any, Any, Acquired]:
    """Take ``slots`` on every named limit, waiting as long as allowed.

    Args:
        mode: ``"concurrency"`` (held until released) or ``"rate_limit"`` (left to decay).
        lease_duration: hold the slots under a lease of this many seconds (``None``: no lease).
        strict: raise when none of the limits exist, instead of going ahead unlimited.
        create_if_missing: create missing limits (inactive, so they limit nothing until
            enabled) so they show up for an operator to configure.
        on_refused: called once, the first time the slots are not free.
        v1_task_run_id: take tag slots through the v1 API for this task run instead.
        long_poll: the longest one request may wait on the server (keep it well inside
            the client's request timeout).

    Raises:
        AcquireConcurrencySlotTimeoutError: not free within ``timeout_seconds``.
        ConcurrencySlotAcquisitionError: see the class.
    """
    if slots < 1:
        raise ValueError(f"occupy must be at least 1 (got {slots})")
    if create_if_missing:
        yield from _create_missing(names)
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    refusals = 0
    while True:
        # With ``on_refused``, the first try is answered at once, so the caller learns it waits.
        wait = 0.0 if on_refused is not None and refusals == 0 else long_poll
        if deadline is not None:
            wait = max(min(wait, deadline - time.monotonic()), 0.0)
        asked = time.monotonic()
        try:
            if v1_task_run_id is not None:
                limits = yield Api(
                    "increment_v1_concurrency_slots", names, v1_task_run_id, wait=wait
                )
                acquired = Acquired(names, slots, limits)
            elif lease_duration is None:
                limits = yield Api("increment_concurrency_slots", names, slots, mode, wait=wait)
                acquired = Acquired(names, slots, limits)
            else:
                answer = yield Api(
                    "increment_concurrency_slots_with_lease",
                    names,
                    slots,
                    mode,
                    lease_duration,
                    holder,
                    wait=wait,
                )
                acquired = Acquired(names, slots, answer.limits)
                if answer.limits:
                    acquired.lease_id = answer.lease_id
        except HTTPStatusError as exc:
            if exc.status_code != 423:
                raise ConcurrencySlotAcquisitionError(
                    f"Unable to acquire concurrency slots on {names!r}: {exc}"
                ) from exc
            refusals += 1
            if refusals == 1 and on_refused is not None:
                on_refused()
            if max_retries is not None and refusals > max_retries:
                raise ConcurrencySlotAcquisitionError(
                    f"Unable to acquire concurrency slots on {names!r}: "
                    f"still full after {max_retries} retries"
                ) from exc
            if deadline is not None and time.monotonic() >= deadline:
                raise AcquireConcurrencySlotTimeoutError(
                    f"Attempt to acquire concurrency slots timed out after {timeout_seconds:g} second(s)"
                ) from None
            if time.monotonic() - asked < min(wait / 2, FALLBACK_POLL_SECONDS):
                yield Sleep(FALLBACK_POLL_SECONDS)  # the server did not hold the request
            continue
        if not acquired.limits:
            if strict:
                raise ConcurrencySlotAcquisitionError(
                    f"Concurrency limits {names!r} must be created before acquiring slots"
                )
            if not quiet:
                logger.warning("Concurrency limits %r do not exist - skipping acquisition.", names)
        return acquired


def _create_missing(names: list[str]) -> Generator[Any, Any, None]:
    for name in names:
        try:
            yield Api(
                "create_global_concurrency_limit", {"name": name, "limit": 1, "active": False}
            )
        except ObjectAlreadyExists:
            pass


def release_steps(
    acquired: Acquired, v1_task_run_id: UUID | None = None
) -> Generator[Any, Any, None]:
    """Give back what :func:`acquire_steps` took (nothing, when no limit existed)."""
    if not acquired.limits:
        return
    occupancy = max(time.monotonic() - acquired.started, 0.001)
    if v1_task_run_id is not None:
        yield Api("decrement_v1_concurrency_slots", acquired.names, v1_task_run_id, occupancy)
    elif acquired.lease_id is not None:
        yield Api("release_concurrency_slots_with_lease", acquired.lease_id)
    else:
        yield Api("release_concurrency_slots", acquired.names, acquired.slots, occupancy)


class LeaseKeeper:
    """Renews a lease from a daemon thread until stopped (the same for sync and async code).

    A renewal the server refuses (the lease lapsed) is logged, or kept to be raised
    on exit when ``raise_on_failure``.
    """

    def __init__(
        self,
        lease_id: UUID,
        lease_duration: float,
        make_client: Callable[[], tuple[Any, bool]],
        raise_on_failure: bool = False,
        interval: float | None = None,
    ) -> None:
        self.lease_id = lease_id
        # Renew well inside the lease, so one or two failed attempts do not lose it.
        self.interval = interval if interval is not None else max(lease_duration / 3, 1.0)
        self.lease_duration = lease_duration
        self.make_client = make_client
        self.raise_on_failure = raise_on_failure
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"flowplane-lease-{lease_id}", daemon=True
        )

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            client, owned = self.make_client()
            try:
                client.renew_concurrency_lease(self.lease_id, self.lease_duration)
            except HTTPStatusError as exc:
                if exc.status_code == 410:
                    self.failure = exc
                    logger.warning("Concurrency lease %s was lost: %s", self.lease_id, exc)
                    return
                logger.warning("Renewing concurrency lease %s failed: %s", self.lease_id, exc)
            except Exception as exc:
                logger.warning("Renewing concurrency lease %s failed: %s", self.lease_id, exc)
            finally:
                if owned:
                    client.close()

    def stop(self) -> None:
        """Stop renewing (the lease itself is released by the caller)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def check(self) -> None:
        """Raise if the lease was lost while held and the keeper was asked to raise then."""
        if self.failure is not None and self.raise_on_failure:
            raise ConcurrencySlotAcquisitionError(
                f"The concurrency lease {self.lease_id} expired while its slots were in use"
            ) from self.failure
