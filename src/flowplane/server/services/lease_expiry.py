"""The lease-expiry service: gives back the slots of concurrency leases whose holders stopped renewing them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from flowplane.schemas.base import now_utc
from flowplane.server.db.session import Database
from flowplane.server.slot_waiters import SlotWaiters
from flowplane.server.store import concurrency_leases as leases

logger = logging.getLogger("flowplane.server.services.lease_expiry")


async def release_expired(
    db: Database, now: datetime, batch_size: int = 100, waiters: SlotWaiters | None = None
) -> int:
    """Release every lease expired at ``now`` and give back its slots; returns how many.

    Requests ``waiters`` holds for those slots are woken as each batch commits.

    Reads first, so an idle server never takes SQLite's write lock. Each batch is one
    transaction; a lease renewed between the read and the release is kept.
    """
    released = 0
    while True:
        async with db.read_session() as session:
            expired = await leases.expired_ids(session, now, batch_size)
        if not expired:
            return released
        freed: dict[UUID, int] = {}
        async with db.session() as session:
            done = await leases.release(
                session, expired, now, expired_only=True, record_occupancy=False, freed=freed
            )
        if waiters is not None and freed:
            waiters.notify(freed)
        released += len(done)
        if len(expired) < batch_size or not done:
            return released


class LeaseExpiry:
    """Every ``interval`` seconds, releases the concurrency leases that have expired."""

    name = "lease-expiry"

    def __init__(
        self,
        db: Database,
        interval: float = 1.0,
        clock: Callable[[], datetime] = now_utc,
        waiters: SlotWaiters | None = None,
    ) -> None:
        self.db = db
        self.interval = interval
        self.clock = clock
        self.waiters = waiters

    async def run_once(self) -> int:
        """One pass at the clock's current time; returns the number of leases released."""
        released = await release_expired(self.db, self.clock(), waiters=self.waiters)
        if released:
            logger.info("Released %d expired concurrency lease(s)", released)
        return released

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    async def flush(self) -> None:
        """Nothing is buffered (tests flush every service before they look)."""

    async def drain(self) -> None:
        """Nothing is buffered: an expired lease left now is released on the next start."""
