"""``concurrency()`` and ``rate_limit()`` for sync and async code: thin faces over the steps in ``_concurrency``.

Both faces build the same :class:`_Block` and differ only in how its steps are
driven (a sync client in this thread, or an async client on the running loop).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from uuid import UUID

from flowplane.sdk import _api
from flowplane.sdk._concurrency import (
    AcquireConcurrencySlotTimeoutError,
    Acquired,
    ConcurrencySlotAcquisitionError,
    LeaseKeeper,
    acquire_steps,
    as_names,
    long_poll_for,
    release_steps,
)
from flowplane.sdk._engine import drive_async, drive_sync

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "aconcurrency",
    "arate_limit",
    "concurrency",
    "rate_limit",
    "aconcurrency_v1",
    "concurrency_v1",
]


class _Block:
    """One ``concurrency()`` block: what to take, and the lease kept while it runs."""

    def __init__(
        self,
        names: list[str],
        *,
        lease_duration: float | None,
        raise_on_lease_renewal_failure: bool,
        v1_task_run_id: UUID | None = None,
        **options: Any,
    ) -> None:
        self.names = names
        self.lease_duration = lease_duration
        self.raise_on_lease_renewal_failure = raise_on_lease_renewal_failure
        self.v1_task_run_id = v1_task_run_id
        self.options = options
        self.settings = _api.current_settings()
        self.keeper: LeaseKeeper | None = None

    def acquire(self) -> Generator[Any, Any, Acquired]:
        return acquire_steps(
            self.names,
            lease_duration=self.lease_duration,
            v1_task_run_id=self.v1_task_run_id,
            long_poll=long_poll_for(self.settings),
            **self.options,
        )

    def hold(self, acquired: Acquired) -> None:
        if acquired.lease_id is not None and self.lease_duration is not None:
            settings = self.settings
            self.keeper = LeaseKeeper(
                acquired.lease_id,
                self.lease_duration,
                lambda: _api.sync_client(settings),
                self.raise_on_lease_renewal_failure,
            ).start()

    def release(self, acquired: Acquired) -> Generator[Any, Any, None]:
        if self.keeper is not None:
            self.keeper.stop()
        return release_steps(acquired, self.v1_task_run_id)

    def check_lease(self) -> None:
        if self.keeper is not None:
            self.keeper.check()


def _block(
    names: str | list[str],
    occupy: int,
    timeout_seconds: float | None,
    max_retries: int | None,
    lease_duration: float,
    strict: bool,
    holder: Any,
    raise_on_lease_renewal_failure: bool | None,
    create_if_missing: bool | None,
) -> _Block | None:
    listed = as_names(names)
    if not listed:
        return None
    return _Block(
        listed,
        slots=occupy,
        timeout_seconds=timeout_seconds,
        max_retries=max_retries,
        lease_duration=lease_duration,
        strict=strict,
        holder=holder,
        create_if_missing=create_if_missing,
        raise_on_lease_renewal_failure=(
            strict if raise_on_lease_renewal_failure is None else raise_on_lease_renewal_failure
        ),
    )


@contextmanager
def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
    holder: Any = None,
    raise_on_lease_renewal_failure: bool | None = None,
    *,
    create_if_missing: bool | None = None,
) -> Generator[None, None, None]:
    """Hold ``occupy`` slots of each named global concurrency limit while the block runs.

    The slots are held under a lease renewed in the background; they are given back
    when the block exits, also on exceptions, and freed by the server if this process
    dies. A slot freed elsewhere is handed to a waiting block at once.

    Args:
        names: the limit name, or several (all are taken together, or none).
        occupy: slots to take on each limit.
        timeout_seconds: give up waiting after this long (``None``: wait indefinitely).
        max_retries: give up after this many refusals (``None``: no cap).
        lease_duration: seconds the lease lasts between renewals (60 to 86,400).
        strict: raise if the limits do not exist, instead of running unlimited.
        holder: who holds the slots, e.g. ``{"type": "flow_run", "id": ...}``.
        raise_on_lease_renewal_failure: raise on exit if the lease was lost meanwhile
            (default: ``strict``).
        create_if_missing: create missing limits as inactive placeholders.

    Raises:
        AcquireConcurrencySlotTimeoutError: the slots were not free in time (a ``TimeoutError``).
        ConcurrencySlotAcquisitionError: strict and missing limits, invalid requests,
            retries exhausted, or (when asked) a lost lease.
    """
    block = _block(
        names,
        occupy,
        timeout_seconds,
        max_retries,
        lease_duration,
        strict,
        holder,
        raise_on_lease_renewal_failure,
        create_if_missing,
    )
    if block is None:
        yield
        return
    client, owned = _api.sync_client(block.settings)
    try:
        acquired = drive_sync(block.acquire(), client)
        block.hold(acquired)
        try:
            yield
        finally:
            drive_sync(block.release(acquired), client)
        block.check_lease()
    finally:
        if owned:
            client.close()


@asynccontextmanager
async def aconcurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
    holder: Any = None,
    raise_on_lease_renewal_failure: bool | None = None,
    *,
    create_if_missing: bool | None = None,
) -> AsyncGenerator[None, None]:
    """The ``async with`` form of :func:`concurrency` (same arguments, same behaviour)."""
    block = _block(
        names,
        occupy,
        timeout_seconds,
        max_retries,
        lease_duration,
        strict,
        holder,
        raise_on_lease_renewal_failure,
        create_if_missing,
    )
    if block is None:
        yield
        return
    client = _api.async_client(block.settings)
    try:
        acquired = await drive_async(block.acquire(), client)
        block.hold(acquired)
        try:
            yield
        finally:
            await drive_async(block.release(acquired), client)
        block.check_lease()
    finally:
        await client.aclose()


def _rate_block(
    names: str | list[str], occupy: int, timeout_seconds: float | None, strict: bool
) -> _Block | None:
    listed = as_names(names)
    if not listed:
        return None
    return _Block(
        listed,
        slots=occupy,
        mode="rate_limit",
        timeout_seconds=timeout_seconds,
        strict=strict,
        lease_duration=None,
        raise_on_lease_renewal_failure=False,
    )


def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Wait until ``occupy`` slots of each named limit are free, and take them for good.

    The slots come back by decay: every limit must have a ``slot_decay_per_second``.

    Raises:
        AcquireConcurrencySlotTimeoutError: not free within ``timeout_seconds``.
        ConcurrencySlotAcquisitionError: a limit has no decay, or (strict) does not exist.
    """
    block = _rate_block(names, occupy, timeout_seconds, strict)
    if block is None:
        return
    client, owned = _api.sync_client(block.settings)
    try:
        drive_sync(block.acquire(), client)
    finally:
        if owned:
            client.close()


async def arate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """The ``await`` form of :func:`rate_limit`."""
    block = _rate_block(names, occupy, timeout_seconds, strict)
    if block is None:
        return
    client = _api.async_client(block.settings)
    try:
        await drive_async(block.acquire(), client)
    finally:
        await client.aclose()


# --- v1: task-run tag limits -------------------------------------------------------------


def _v1_block(
    names: str | list[str], task_run_id: UUID, timeout_seconds: float | None
) -> _Block | None:
    listed = as_names(names)
    if not listed:
        return None
    return _Block(
        listed,
        slots=1,
        timeout_seconds=timeout_seconds,
        lease_duration=None,
        raise_on_lease_renewal_failure=False,
        v1_task_run_id=task_run_id,
    )


@contextmanager
def concurrency_v1(
    names: str | list[str], task_run_id: UUID, timeout_seconds: float | None = None
) -> Generator[None, None, None]:
    """Hold one slot of each named tag's limit for ``task_run_id`` while the block runs.

    Raises:
        AcquireConcurrencySlotTimeoutError: not free within ``timeout_seconds``.
    """
    block = _v1_block(names, task_run_id, timeout_seconds)
    if block is None:
        yield
        return
    client, owned = _api.sync_client(block.settings)
    try:
        acquired = drive_sync(block.acquire(), client)
        try:
            yield
        finally:
            drive_sync(block.release(acquired), client)
    finally:
        if owned:
            client.close()


@asynccontextmanager
async def aconcurrency_v1(
    names: str | list[str], task_run_id: UUID, timeout_seconds: float | None = None
) -> AsyncGenerator[None, None]:
    """The ``async with`` form of :func:`concurrency_v1`."""
    block = _v1_block(names, task_run_id, timeout_seconds)
    if block is None:
        yield
        return
    client = _api.async_client(block.settings)
    try:
        acquired = await drive_async(block.acquire(), client)
        try:
            yield
        finally:
            await drive_async(block.release(acquired), client)
    finally:
        await client.aclose()
