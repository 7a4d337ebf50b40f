"""Concurrency leases: expiry frees the slots of holders that stopped renewing, driven by a passed-in clock."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from flowplane.schemas.base import now_utc
from flowplane.server.db import tables as t
from flowplane.server.events.bus import EventBus
from flowplane.server.services.lease_expiry import LeaseExpiry, release_expired
from flowplane.server.services.registry import build_services

V2 = "/v2/concurrency_limits"


@pytest.fixture
async def served(
    database_url: str, flowplane_home: Path
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The started app (for its database) and a client for it; background services off, so the
    tests alone decide when leases expire."""
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    settings = Settings(home=flowplane_home, database_url=database_url)
    application = create_app(settings, run_migrations=False, run_services=False)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
            yield application, http


def later(seconds: float) -> dt.datetime:
    return now_utc() + dt.timedelta(seconds=seconds)


async def make_limit(client, name: str, limit: int) -> None:
    assert (await client.post(f"{V2}/", json={"name": name, "limit": limit})).status_code == 201


async def take(client, *names: str, duration: float = 60, slots: int = 1) -> str:
    body = {"names": list(names), "slots": slots, "lease_duration": duration}
    response = await client.post(f"{V2}/increment-with-lease", json=body)
    assert response.status_code == 200, response.text
    return response.json()["lease_id"]


async def active_slots(client, name: str) -> int:
    return (await client.get(f"{V2}/{name}")).json()["active_slots"]


async def renew(client, lease_id: str, duration: float = 60) -> int:
    response = await client.post(f"{V2}/leases/{lease_id}/renew", json={"lease_duration": duration})
    return response.status_code


async def test_expired_leases_give_their_slots_back(served) -> None:
    app, client = served
    db = app.state.db
    await make_limit(client, "a", 2)
    await make_limit(client, "b", 2)
    await take(client, "a", "b")
    kept = await take(client, "a", duration=600)
    assert await active_slots(client, "a") == 2
    assert await release_expired(db, later(30)) == 0  # not yet
    assert await active_slots(client, "a") == 2
    assert await release_expired(db, later(61)) == 1
    assert (await active_slots(client, "a"), await active_slots(client, "b")) == (1, 0)
    assert await release_expired(db, later(61)) == 0  # released once only
    assert await renew(client, kept) == 204


async def test_a_renewed_lease_outlives_its_first_expiration(served) -> None:
    app, client = served
    db = app.state.db
    await make_limit(client, "db", 1)
    lease_id = await take(client, "db", duration=60)
    assert await renew(client, lease_id, duration=300) == 204
    assert await release_expired(db, later(120)) == 0
    assert await active_slots(client, "db") == 1
    assert await release_expired(db, later(301)) == 1
    assert await active_slots(client, "db") == 0
    assert await renew(client, lease_id) == 410


async def test_a_lapsed_lease_cannot_be_renewed_and_is_reaped(served) -> None:
    app, client = served
    db = app.state.db
    await make_limit(client, "db", 1)
    lease_id = await take(client, "db")
    async with db.session() as session:
        await session.execute(
            sa.update(t.ConcurrencyLease)
            .where(t.ConcurrencyLease.id == uuid.UUID(lease_id))
            .values(expiration=now_utc() - dt.timedelta(seconds=1))
        )
    assert await renew(client, lease_id) == 410
    refused = await client.post(f"{V2}/increment-with-lease", json={"names": ["db"], "slots": 1})
    assert refused.status_code == 423  # the slot is still taken until the lease is reaped
    assert await release_expired(db, now_utc()) == 1
    assert await active_slots(client, "db") == 0


async def test_many_expired_leases_are_released_in_batches(served) -> None:
    app, client = served
    db = app.state.db
    await make_limit(client, "db", 10)
    for _ in range(7):
        await take(client, "db")
    assert await release_expired(db, later(61), batch_size=3) == 7
    assert await active_slots(client, "db") == 0


async def test_the_service_runs_with_its_clock(served) -> None:
    app, client = served
    db = app.state.db
    services = build_services(SimpleNamespace(state=SimpleNamespace(db=db, bus=EventBus())))
    assert any(isinstance(s, LeaseExpiry) for s in services)
    await make_limit(client, "db", 1)
    await take(client, "db")
    service = LeaseExpiry(db, interval=0.01, clock=lambda: later(3600))
    assert await service.run_once() == 1
    assert await service.run_once() == 0
    await service.drain()
    assert await active_slots(client, "db") == 0


async def test_release_feeds_the_occupancy_average_and_expiry_does_not(served) -> None:
    app, client = served
    db = app.state.db
    await make_limit(client, "db", 1)
    lease_id = await take(client, "db")
    async with db.session() as session:  # taken ten seconds ago
        await session.execute(
            sa.update(t.ConcurrencyLease)
            .where(t.ConcurrencyLease.id == uuid.UUID(lease_id))
            .values(created=now_utc() - dt.timedelta(seconds=10))
        )
    await client.post(f"{V2}/decrement-with-lease", json={"lease_id": lease_id})

    async def average() -> float:
        async with db.read_session() as session:
            return (
                await session.execute(sa.select(t.ConcurrencyLimit.avg_slot_occupancy_seconds))
            ).scalar_one()

    after_release = await average()
    assert 5.9 < after_release < 6.1  # 2 + (10 - 2) / 2
    await take(client, "db")
    await release_expired(db, later(3600))
    assert await average() == after_release
