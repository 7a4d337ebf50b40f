"""Slot decay: rate limits free slots with time, the SQL statements agree with the pure arithmetic."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from flowplane.core import concurrency as cc
from flowplane.schemas.base import now_utc
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.store import concurrency as store

V2 = "/v2/concurrency_limits"
NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
async def served(
    database_url: str, flowplane_home: Path
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The started app (for its database) and a client for it."""
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    settings = Settings(home=flowplane_home, database_url=database_url)
    application = create_app(settings, run_migrations=False, run_services=False)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
            yield application, http


async def rewind(db: Database, name: str, seconds: float) -> None:
    """Pretend the limit's counts were last brought up to date ``seconds`` earlier."""
    async with db.session() as session:
        row = (
            await session.execute(
                sa.select(t.ConcurrencyLimit).where(t.ConcurrencyLimit.name == name)
            )
        ).scalar_one()
        row.slots_updated = row.slots_updated - dt.timedelta(seconds=seconds)


async def increment(client, name: str, slots: int = 1) -> httpx.Response:
    return await client.post(
        f"{V2}/increment", json={"names": [name], "slots": slots, "mode": "rate_limit"}
    )


async def test_rate_limited_slots_decay_on_read_and_on_increment(served) -> None:
    app, client = served
    db = app.state.db
    await client.post(f"{V2}/", json={"name": "api", "limit": 4, "slot_decay_per_second": 2.0})
    assert (await increment(client, "api", 4)).status_code == 200
    assert (await increment(client, "api")).status_code == 423
    await rewind(db, "api", 1.0)  # two slots decayed
    assert (await client.get(f"{V2}/api")).json()["active_slots"] == 2
    assert (await increment(client, "api", 2)).status_code == 200
    assert (await increment(client, "api")).status_code == 423
    await rewind(db, "api", 10.0)
    assert (await client.get(f"{V2}/api")).json()["active_slots"] == 0  # never below zero


async def test_polling_faster_than_decay_still_frees_slots(served) -> None:
    """A refusal brings the counts up to date but keeps the fraction already decayed."""
    app, client = served
    db = app.state.db
    await client.post(f"{V2}/", json={"name": "api", "limit": 1, "slot_decay_per_second": 0.5})
    assert (await increment(client, "api")).status_code == 200
    await rewind(db, "api", 1.0)  # half a slot free
    assert (await increment(client, "api")).status_code == 423
    assert (await client.get(f"{V2}/api")).json()["active_slots"] == 1
    await rewind(db, "api", 1.0)  # the other half
    assert (await increment(client, "api")).status_code == 200


async def test_concurrency_limits_do_not_decay(served) -> None:
    app, client = served
    db = app.state.db
    await client.post(f"{V2}/", json={"name": "db", "limit": 1})
    await client.post(f"{V2}/increment", json={"names": ["db"], "slots": 1})
    await rewind(db, "db", 3600)
    assert (await client.get(f"{V2}/db")).json()["active_slots"] == 1
    assert (
        await client.post(f"{V2}/increment", json={"names": ["db"], "slots": 1})
    ).status_code == 423


async def test_retry_after_grows_with_the_queue_of_refused_requests(served) -> None:
    _, client = served
    await client.post(f"{V2}/", json={"name": "api", "limit": 1, "slot_decay_per_second": 0.01})
    await increment(client, "api")
    waits = [float((await increment(client, "api")).headers["Retry-After"]) for _ in range(4)]
    # Expected waits 100, 200, 300, 400 s, each spread by at most 30%.
    for queued, wait in enumerate(waits, start=1):
        assert 70 * queued <= wait <= 130 * queued
    created = await client.post(f"{V2}/", json={"name": "other", "limit": 1})
    assert created.json()["denied_slots"] == 0


async def test_changing_the_decay_rate_keeps_what_already_decayed(served) -> None:
    app, client = served
    db = app.state.db
    await client.post(f"{V2}/", json={"name": "api", "limit": 4, "slot_decay_per_second": 1.0})
    await increment(client, "api", 4)
    await rewind(db, "api", 2.0)
    assert (
        await client.patch(f"{V2}/api", json={"slot_decay_per_second": 0.001})
    ).status_code == 204
    assert (await client.get(f"{V2}/api")).json()["active_slots"] == 2


# --- the SQL statements agree with flowplane.core.concurrency ----------------------------------


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


CASES = [
    # active, denied, decay, avg occupancy, seconds since slots_updated
    (3.0, 0.0, 0.0, 2.0, 100.0),
    (3.0, 4.0, 0.0, 2.0, 3.0),
    (3.0, 4.0, 0.5, 2.0, 3.0),
    (3.0, 4.0, 2.0, 2.0, 1.25),
    (1.0, 9.0, 0.0, 0.01, 0.5),
    (1.0, 9.0, 0.0, 900.0, 60.0),
    (5.0, 5.0, 1.0, 2.0, 10.0),
    (2.5, 0.0, 0.25, 2.0, -5.0),  # slots_updated in the future
]


async def _insert(db: Database, case: tuple[float, ...]) -> uuid.UUID:
    active, denied, decay, occupancy, since = case
    row = t.ConcurrencyLimit(
        name=f"case-{uuid.uuid4().hex[:8]}",
        limit=5,
        active_slots=active,
        denied_slots=denied,
        slot_decay_per_second=decay,
        avg_slot_occupancy_seconds=occupancy,
        slots_updated=NOW - dt.timedelta(seconds=since),
    )
    async with db.session() as session:
        session.add(row)
    return row.id


def _facts(case: tuple[float, ...]) -> cc.LimitFacts:
    active, denied, decay, occupancy, since = case
    return cc.LimitFacts(
        limit=5,
        active_slots=active,
        denied_slots=denied,
        slot_decay_per_second=decay,
        avg_slot_occupancy_seconds=occupancy,
        slots_updated=NOW - dt.timedelta(seconds=since),
    )


@pytest.mark.parametrize("case", CASES)
async def test_sql_decay_matches_core(db: Database, case: tuple[float, ...]) -> None:
    limit_id = await _insert(db, case)
    dialect = db.dialect
    async with db.read_session() as session:
        active, denied = (
            await session.execute(
                sa.select(
                    store.decayed_active(dialect, NOW), store.decayed_denied(dialect, NOW)
                ).where(t.ConcurrencyLimit.id == limit_id)
            )
        ).one()
    facts = _facts(case)
    expected = cc.at(facts, NOW)
    # SQLite's date functions resolve to the millisecond: allow a millisecond of decay.
    denied_rate = cc.denied_decay_rate(
        facts.slot_decay_per_second, facts.avg_slot_occupancy_seconds
    )
    assert active == pytest.approx(
        expected.active_slots, abs=1e-3 * facts.slot_decay_per_second + 1e-6
    )
    assert denied == pytest.approx(expected.denied_slots, abs=1e-3 * denied_rate + 1e-6)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("slots", [1, 2, 3])
async def test_sql_admission_matches_core(
    db: Database, case: tuple[float, ...], slots: int
) -> None:
    limit_id = await _insert(db, case)
    async with db.session() as session:
        taken = await store.take(session, limit_id, slots, NOW)
    expected = cc.at(_facts(case), NOW)
    assert taken is cc.fits(expected.active_slots, slots, 5)
    async with db.read_session() as session:
        row = await store.read(session, limit_id)
    assert row is not None
    if taken:
        assert row.active_slots == pytest.approx(expected.active_slots + slots, abs=1e-3)
        assert row.slots_updated == NOW
    else:
        assert row.active_slots == case[0]  # a refusal writes nothing here


@pytest.mark.parametrize(("occupancy", "limit"), [(10.0, 1), (10.0, 4), (0.0, 2), (3.0, 0)])
async def test_sql_occupancy_average_matches_core(
    db: Database, occupancy: float, limit: int
) -> None:
    row = t.ConcurrencyLimit(
        name="db", limit=limit, active_slots=1.0, slots_updated=NOW, avg_slot_occupancy_seconds=2.0
    )
    async with db.session() as session:
        session.add(row)
    async with db.session() as session:
        await store.give_back(session, {row.id: 1}, NOW, occupancy_seconds={row.id: occupancy})
    async with db.read_session() as session:
        stored = await store.read(session, row.id)
    assert stored is not None
    assert stored.avg_slot_occupancy_seconds == pytest.approx(
        cc.next_average_occupancy(2.0, occupancy, limit)
    )
    assert stored.active_slots == 0


async def test_reads_use_the_current_time(db: Database) -> None:
    row = t.ConcurrencyLimit(
        name="api", limit=5, active_slots=4.0, slot_decay_per_second=1.0, slots_updated=now_utc()
    )
    async with db.session() as session:
        session.add(row)
    assert store.view(row, now_utc() + dt.timedelta(seconds=2.5)).active_slots == 2
    assert store.full_view(row, now_utc()).active_slots == 4
