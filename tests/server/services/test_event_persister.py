"""The event persister: batched writes of events and their resource rows, duplicates skipped."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from flowplane.schemas.events import Event, ReceivedEvent
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.events.bus import EventBus
from flowplane.server.services.batching import BatchSettings
from flowplane.server.services.event_persister import EventPersister


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


def make_event(i: int = 0, related: int = 2) -> ReceivedEvent:
    return Event(
        event=f"test.event.{i}",
        resource={"prefect.resource.id": f"thing.{i}", "label": "x"},
        related=[
            {"prefect.resource.id": f"other.{j}", "prefect.resource.role": f"role-{j}"}
            for j in range(related)
        ],
        payload={"i": i},
    ).receive()


async def counts(db: Database) -> tuple[int, int]:
    async with db.read_session() as session:
        events = (
            await session.execute(sa.select(sa.func.count()).select_from(t.Event))
        ).scalar_one()
        resources = (
            await session.execute(sa.select(sa.func.count()).select_from(t.EventResource))
        ).scalar_one()
    return events, resources


async def test_events_and_resource_rows_are_written(db: Database) -> None:
    bus = EventBus()
    persister = EventPersister(db, bus)
    events = [make_event(i) for i in range(3)]
    bus.publish("events", events)
    await persister.flush()
    assert await counts(db) == (3, 9)
    async with db.read_session() as session:
        stored = await session.get(t.Event, events[1].id)
        assert stored is not None
        assert stored.resource_id == "thing.1"
        assert stored.related_resource_ids == ["other.0", "other.1"]
        roles = (
            await session.execute(
                sa.select(t.EventResource.resource_role, t.EventResource.resource_id)
                .where(t.EventResource.event_id == events[1].id)
                .order_by(t.EventResource.resource_role)
            )
        ).all()
    assert [tuple(r) for r in roles] == [
        ("", "thing.1"),
        ("role-0", "other.0"),
        ("role-1", "other.1"),
    ]


async def test_duplicates_are_ignored_within_and_across_batches(db: Database) -> None:
    bus = EventBus()
    persister = EventPersister(db, bus)
    event = make_event()
    bus.publish("events", [event, event])
    await persister.flush()
    bus.publish("events", [event, make_event(1)])
    await persister.flush()
    assert await counts(db) == (2, 6)
    assert persister.parked == 0


async def test_large_batches_fit_the_parameter_limits(db: Database) -> None:
    bus = EventBus()
    persister = EventPersister(db, bus, BatchSettings(batch_size=5000))
    bus.publish("events", [make_event(i, related=6) for i in range(3000)])
    await persister.flush()
    assert await counts(db) == (3000, 21000)
    assert persister.stats.batches == 1


async def test_the_service_writes_on_its_own_and_drains_on_shutdown(db: Database) -> None:
    bus = EventBus()
    persister = EventPersister(db, bus, BatchSettings(batch_size=500, window=0.05))
    task = asyncio.ensure_future(persister.run())
    bus.publish("events", [make_event(1)])
    for _ in range(200):
        if (await counts(db))[0] == 1:
            break
        await asyncio.sleep(0.02)
    assert (await counts(db))[0] == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    bus.publish("events", [make_event(2), make_event(3)])
    await persister.drain()
    assert (await counts(db))[0] == 3


async def test_events_with_the_same_id_but_new_content_keep_the_first(db: Database) -> None:
    bus = EventBus()
    persister = EventPersister(db, bus)
    first = make_event(1)
    second = first.model_copy(update={"event": "changed"})
    bus.publish("events", [first])
    await persister.flush()
    bus.publish("events", [second])
    await persister.flush()
    async with db.read_session() as session:
        stored = await session.get(t.Event, first.id)
    assert stored is not None and stored.event == "test.event.1"
    assert isinstance(first.id, uuid.UUID)


async def test_sqlite_rows_are_stored_exactly_as_sqlalchemy_stores_them(sqlite_url: str) -> None:
    """The bulk path writes its own SQL; every stored value must match the ORM's."""
    from flowplane.server.store import events as store

    db = Database(sqlite_url)
    try:
        base = Event(
            event="test.event",
            occurred=dt.datetime(2026, 2, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc),
            resource={"prefect.resource.id": "thing.1", "name": 'é "quoted"'},
            related=[{"prefect.resource.id": "other.0", "prefect.resource.role": "r"}],
            payload={"nested": {"x": [1, 2.5, None, "é"]}, "when": "x"},
            follows=uuid.uuid4(),
        ).receive(dt.datetime(2026, 2, 1, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))
        bulk = base.model_copy(update={"id": uuid.uuid4()})
        orm = base.model_copy(update={"id": uuid.uuid4()})
        async with db.session() as session:
            assert await store.write_many(session, [bulk]) == 1
        async with db.session() as session:
            session.add(
                t.Event(
                    id=orm.id,
                    occurred=orm.occurred,
                    received=orm.received,
                    event=orm.event,
                    resource_id=orm.resource_id,
                    resource=orm.resource,
                    related_resource_ids=["other.0"],
                    related=orm.related,
                    payload=orm.payload,
                    follows=orm.follows,
                )
            )
        async with db.read_session() as session:
            connection = await session.connection()
            rows = (
                await connection.exec_driver_sql(
                    "SELECT id, occurred, received, event, resource_id, resource, "
                    "related_resource_ids, related, payload, follows FROM event ORDER BY id"
                )
            ).all()
            resource_ids = (await connection.exec_driver_sql("SELECT id FROM event_resource")).all()
        by_id = {row[0]: row[1:] for row in rows}
        assert by_id[bulk.id.hex] == by_id[orm.id.hex]
        assert all(uuid.UUID(hex=row[0]).version == 7 for row in resource_ids)
        assert await counts(db) == (2, 2)
    finally:
        await db.dispose()
