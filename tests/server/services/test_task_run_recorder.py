"""The task-run recorder: order- and duplicate-independent, batched, patient with missing flow runs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from flowplane.schemas.events import Event, ReceivedEvent
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.events.bus import EventBus
from flowplane.server.services.batching import BatchSettings
from flowplane.server.services.task_run_recorder import TaskRunRecorder, replay

T0 = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def recorder(db: Database, bus: EventBus) -> TaskRunRecorder:
    return TaskRunRecorder(
        db, bus, BatchSettings(batch_size=1000, window=0.01, retry_delay=0, max_attempts=4)
    )


async def make_flow_run(db: Database, flow_run_id: uuid.UUID | None = None) -> uuid.UUID:
    flow_run_id = flow_run_id or uuid.uuid4()
    async with db.session() as session:
        flow = t.Flow(name=f"flow-{uuid.uuid4().hex[:8]}")
        session.add(flow)
        await session.flush()
        session.add(t.FlowRun(id=flow_run_id, flow_id=flow.id, name="run"))
    return flow_run_id


def state_event(
    task_run_id: uuid.UUID,
    flow_run_id: uuid.UUID | None,
    state_type: str,
    seconds: float,
    *,
    name: str | None = None,
    state_id: uuid.UUID | None = None,
    task_key: str = "say_hello-abc",
    dynamic_key: str = "0",
    **task_fields: Any,
) -> ReceivedEvent:
    """A task-run state change as a Prefect client emits it."""
    name = name or state_type.title()
    related = []
    if flow_run_id is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    related.append({"prefect.resource.id": "prefect.tag.demo", "prefect.resource.role": "tag"})
    task_run = {
        "name": "say_hello-0",
        "task_key": task_key,
        "dynamic_key": dynamic_key,
        "empirical_policy": {"retries": 0, "retry_delay": 0},
        "tags": ["demo"],
        "labels": {},
        "task_inputs": {"x": [{"input_type": "parameter", "name": "x"}]},
        "run_count": 99,  # the client's own count; the server recomputes it
        "flow_run_run_count": 1,
        **task_fields,
    }
    event = Event(
        id=state_id or uuid.uuid4(),
        occurred=T0 + dt.timedelta(seconds=seconds),
        event=f"prefect.task-run.{name}",
        resource={
            "prefect.resource.id": f"prefect.task-run.{task_run_id}",
            "prefect.resource.name": task_run["name"],
            "prefect.state-type": state_type,
            "prefect.orchestration": "client",
        },
        related=related,
        payload={
            "intended": {"from": None, "to": state_type},
            "initial_state": None,
            "validated_state": {
                "type": state_type,
                "name": name,
                "message": "",
                "state_details": {},
                "data": None,
            },
            "task_run": task_run,
        },
    )
    return event.receive()


async def read_run(db: Database, task_run_id: uuid.UUID) -> t.TaskRun | None:
    async with db.read_session() as session:
        return await session.get(t.TaskRun, task_run_id)


async def read_states(db: Database, task_run_id: uuid.UUID) -> list[t.TaskRunState]:
    async with db.read_session() as session:
        rows = await session.execute(
            sa.select(t.TaskRunState)
            .where(t.TaskRunState.task_run_id == task_run_id)
            .order_by(t.TaskRunState.timestamp)
        )
        return list(rows.scalars().all())


def lifecycle(
    task_run_id: uuid.UUID, flow_run_id: uuid.UUID | None, dynamic_key: str = "0"
) -> list[ReceivedEvent]:
    return [
        state_event(task_run_id, flow_run_id, "PENDING", 0, dynamic_key=dynamic_key),
        state_event(task_run_id, flow_run_id, "RUNNING", 1, dynamic_key=dynamic_key),
        state_event(task_run_id, flow_run_id, "COMPLETED", 4, dynamic_key=dynamic_key),
    ]


async def assert_completed_once(
    db: Database, task_run_id: uuid.UUID, flow_run_id: uuid.UUID | None
) -> None:
    run = await read_run(db, task_run_id)
    assert run is not None
    assert run.flow_run_id == flow_run_id
    assert (run.state_type, run.state_name) == ("COMPLETED", "Completed")
    assert run.run_count == 1
    assert run.start_time == T0 + dt.timedelta(seconds=1)
    assert run.end_time == T0 + dt.timedelta(seconds=4)
    assert run.total_run_time == pytest.approx(3.0)
    assert run.expected_start_time == T0
    states = await read_states(db, task_run_id)
    assert [s.type for s in states] == ["PENDING", "RUNNING", "COMPLETED"]
    assert run.state_id == states[-1].id
    assert run.state_timestamp == states[-1].timestamp


async def test_a_lifecycle_in_one_batch(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    events = lifecycle(task_run_id, flow_run_id)
    bus.publish("events", events)
    await recorder.flush()
    await assert_completed_once(db, task_run_id, flow_run_id)
    run = await read_run(db, task_run_id)
    assert run is not None
    assert run.task_key == "say_hello-abc" and run.dynamic_key == "0" and run.name == "say_hello-0"
    assert run.tags == ["demo"] and run.flow_run_run_count == 1
    assert run.task_inputs == {"x": [{"input_type": "parameter", "name": "x"}]}
    states = await read_states(db, task_run_id)
    assert [s.id for s in states] == [e.id for e in events]  # state id = event id
    assert states[1].state_details["task_run_id"] == str(task_run_id)
    assert states[1].state_details["flow_run_id"] == str(flow_run_id)


@pytest.mark.parametrize("order", [(2, 1, 0), (2, 0, 1), (1, 2, 0)])
async def test_out_of_order_events_across_batches(
    db: Database, bus: EventBus, recorder: TaskRunRecorder, order: tuple[int, int, int]
) -> None:
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    events = lifecycle(task_run_id, flow_run_id)
    for index in order:
        bus.publish("events", [events[index]])
        await recorder.flush()
    await assert_completed_once(db, task_run_id, flow_run_id)


async def test_completed_before_running_in_one_batch(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    events = lifecycle(task_run_id, flow_run_id)
    bus.publish("events", [events[2], events[1], events[0]])
    await recorder.flush()
    await assert_completed_once(db, task_run_id, flow_run_id)


async def test_duplicates_within_and_across_batches(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    events = lifecycle(task_run_id, flow_run_id)
    bus.publish("events", [events[0], events[1], events[1], events[0]])
    await recorder.flush()
    bus.publish("events", [*events, events[2]])
    await recorder.flush()
    bus.publish("events", [events[1]])
    await recorder.flush()
    await assert_completed_once(db, task_run_id, flow_run_id)


async def test_late_older_event_does_not_replace_the_current_state(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    events = lifecycle(task_run_id, flow_run_id)
    bus.publish("events", [events[0], events[2]])
    await recorder.flush()
    run = await read_run(db, task_run_id)
    assert run is not None and run.state_type == "COMPLETED" and run.run_count == 0
    bus.publish("events", [events[1]])  # the Running event arrives last
    await recorder.flush()
    await assert_completed_once(db, task_run_id, flow_run_id)


async def test_retries_count_runs(db: Database, bus: EventBus, recorder: TaskRunRecorder) -> None:
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    events = [
        state_event(task_run_id, flow_run_id, "PENDING", 0),
        state_event(task_run_id, flow_run_id, "RUNNING", 1),
        state_event(task_run_id, flow_run_id, "SCHEDULED", 2, name="AwaitingRetry"),
        state_event(task_run_id, flow_run_id, "RUNNING", 5, name="Retrying"),
        state_event(task_run_id, flow_run_id, "FAILED", 7),
    ]
    bus.publish("events", list(reversed(events)))
    await recorder.flush()
    run = await read_run(db, task_run_id)
    assert run is not None
    assert (run.state_type, run.run_count) == ("FAILED", 2)
    assert run.start_time == T0 + dt.timedelta(seconds=1)
    assert run.end_time == T0 + dt.timedelta(seconds=7)
    assert run.total_run_time == pytest.approx(1.0 + 2.0)


async def test_many_task_runs_in_one_batch_use_one_transaction(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    runs = [uuid.uuid4() for _ in range(150)]
    for i, task_run_id in enumerate(runs):
        bus.publish(
            "events", lifecycle(task_run_id, flow_run_id if i % 2 else None, dynamic_key=str(i))
        )

    transactions = 0

    def count(_conn: Any) -> None:
        nonlocal transactions
        transactions += 1

    sa.event.listen(db.engine.sync_engine, "begin", count)
    try:
        await recorder.flush()
    finally:
        sa.event.remove(db.engine.sync_engine, "begin", count)
    assert transactions == 1
    assert recorder.stats.batches == 1
    async with db.read_session() as session:
        total = (
            await session.execute(sa.select(sa.func.count()).select_from(t.TaskRun))
        ).scalar_one()
        completed = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(t.TaskRun)
                .where(t.TaskRun.state_type == "COMPLETED")
            )
        ).scalar_one()
        states = (
            await session.execute(sa.select(sa.func.count()).select_from(t.TaskRunState))
        ).scalar_one()
    assert (total, completed, states) == (150, 150, 450)
    await assert_completed_once(db, runs[1], flow_run_id)
    await assert_completed_once(db, runs[0], None)


async def test_events_wait_for_their_flow_run(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = uuid.uuid4()  # not created yet
    other_flow_run = await make_flow_run(db)
    waiting, ready = uuid.uuid4(), uuid.uuid4()
    bus.publish("events", lifecycle(waiting, flow_run_id) + lifecycle(ready, other_flow_run, "1"))
    await recorder.flush()
    assert await read_run(db, waiting) is None
    assert recorder.parked == 3
    await assert_completed_once(db, ready, other_flow_run)  # the rest of the batch went through

    await make_flow_run(db, flow_run_id)
    await recorder.flush()  # retry_delay=0: parked events are due at once
    assert recorder.parked == 0
    await assert_completed_once(db, waiting, flow_run_id)


async def test_events_for_a_flow_run_that_never_appears_are_dropped_eventually(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    bus.publish("events", [state_event(uuid.uuid4(), uuid.uuid4(), "RUNNING", 0)])
    for _ in range(3):
        await recorder.flush()
        assert recorder.parked == 1
    await recorder.flush()  # the fourth attempt is the last (max_attempts=4)
    assert recorder.parked == 0
    assert recorder.stats.dropped == 1


async def test_a_taken_natural_key_maps_to_the_existing_task_run(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    existing = uuid.uuid4()
    async with db.session() as session:
        session.add(
            t.TaskRun(
                id=existing,
                flow_run_id=flow_run_id,
                task_key="say_hello-abc",
                dynamic_key="0",
                name="api",
            )
        )
    newcomer = uuid.uuid4()
    bus.publish("events", lifecycle(newcomer, flow_run_id))
    await recorder.flush()
    assert await read_run(db, newcomer) is None
    await assert_completed_once(db, existing, flow_run_id)


async def test_same_natural_key_twice_in_one_batch(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    first, second = uuid.uuid4(), uuid.uuid4()
    bus.publish(
        "events",
        [state_event(first, flow_run_id, "PENDING", 0), *lifecycle(second, flow_run_id)[1:]],
    )
    await recorder.flush()
    assert await read_run(db, second) is None
    await assert_completed_once(db, first, flow_run_id)


async def test_other_events_are_ignored_and_bad_ones_skipped(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    good = uuid.uuid4()
    server_side = state_event(uuid.uuid4(), flow_run_id, "RUNNING", 0)
    server_side.resource["prefect.orchestration"] = "server"
    malformed = state_event(uuid.uuid4(), flow_run_id, "RUNNING", 0)
    malformed.payload["task_run"] = {"name": "no keys"}
    bad_type = state_event(uuid.uuid4(), flow_run_id, "RUNNING", 0)
    bad_type.payload["validated_state"]["type"] = "EXPLODED"
    not_a_task_run = Event(
        event="prefect.flow-run.Running", resource={"prefect.resource.id": "prefect.flow-run.x"}
    ).receive()
    bus.publish(
        "events", [not_a_task_run, server_side, malformed, bad_type, *lifecycle(good, flow_run_id)]
    )
    await recorder.flush()
    await assert_completed_once(db, good, flow_run_id)
    async with db.read_session() as session:
        assert (
            await session.execute(sa.select(sa.func.count()).select_from(t.TaskRun))
        ).scalar_one() == 1
    assert recorder.parked == 0


async def test_payload_fields_follow_the_latest_state(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    bus.publish(
        "events",
        [state_event(task_run_id, flow_run_id, "COMPLETED", 5, cache_key="new", tags=["b"])],
    )
    await recorder.flush()
    bus.publish(
        "events", [state_event(task_run_id, flow_run_id, "RUNNING", 1, cache_key="old", tags=["a"])]
    )
    await recorder.flush()
    run = await read_run(db, task_run_id)
    assert run is not None
    assert (run.cache_key, run.tags, run.state_type, run.run_count) == (
        "new",
        ["b"],
        "COMPLETED",
        1,
    )


async def test_drain_records_everything(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    bus.publish("events", lifecycle(task_run_id, flow_run_id))
    await recorder.drain()
    await assert_completed_once(db, task_run_id, flow_run_id)


def test_replay_is_independent_of_input_order() -> None:
    from flowplane.core.states import StateType
    from flowplane.core.transitions import StateFacts

    ids = [uuid.uuid4() for _ in range(3)]
    facts = [
        StateFacts(StateType.PENDING, "Pending", T0),
        StateFacts(StateType.RUNNING, "Running", T0 + dt.timedelta(seconds=2)),
        StateFacts(
            StateType.COMPLETED, "Completed", T0 + dt.timedelta(seconds=2)
        ),  # same timestamp
    ]
    forward = replay(zip(ids, facts, strict=True))
    backward = replay(reversed(list(zip(ids, facts, strict=True))))
    assert forward == backward
    assert forward is not None
    current, updates = forward
    assert current == ids[2]
    assert updates.run_count == 1 and updates.end_time == T0 + dt.timedelta(seconds=2)
    assert replay([]) is None


async def test_in_order_events_across_batches_continue_from_the_stored_run(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    events = lifecycle(task_run_id, flow_run_id)
    for event in events:
        bus.publish("events", [event])
        await recorder.flush()
    await assert_completed_once(db, task_run_id, flow_run_id)


async def test_continuing_runs_and_replayed_runs_agree_with_one_batch(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    """Retries split over batches: continued (in order), replayed (late), and all at once."""
    flow_run_id = await make_flow_run(db)
    runs = [uuid.uuid4() for _ in range(3)]

    def retried(task_run_id: uuid.UUID, key: str) -> list[ReceivedEvent]:
        return [
            state_event(task_run_id, flow_run_id, "PENDING", 0, dynamic_key=key),
            state_event(task_run_id, flow_run_id, "RUNNING", 1, dynamic_key=key),
            state_event(
                task_run_id, flow_run_id, "SCHEDULED", 2, name="AwaitingRetry", dynamic_key=key
            ),
            state_event(task_run_id, flow_run_id, "RUNNING", 5, name="Retrying", dynamic_key=key),
            state_event(task_run_id, flow_run_id, "COMPLETED", 7, dynamic_key=key),
        ]

    in_order, late, at_once = (retried(tid, str(i)) for i, tid in enumerate(runs))
    for part in (in_order[:2], in_order[2:4], in_order[4:]):
        bus.publish("events", part)
        await recorder.flush()
    for part in (late[3:], late[:1], late[1:3]):
        bus.publish("events", part)
        await recorder.flush()
    bus.publish("events", at_once)
    await recorder.flush()

    columns = (
        "state_id",
        "state_type",
        "state_name",
        "run_count",
        "start_time",
        "end_time",
        "total_run_time",
        "expected_start_time",
    )
    seen = []
    for tid, events in zip(runs, (in_order, late, at_once), strict=True):
        run = await read_run(db, tid)
        assert run is not None
        assert run.state_id == events[-1].id
        seen.append(tuple(getattr(run, c) for c in columns[1:]))
        assert len(await read_states(db, tid)) == 5
    assert seen[0] == seen[1] == seen[2]
    assert seen[0][:3] == ("COMPLETED", "Completed", 2)
    assert seen[0][5] == pytest.approx(1.0 + 2.0)


async def test_a_repeated_state_after_the_current_one_is_not_counted_twice(
    db: Database, bus: EventBus, recorder: TaskRunRecorder
) -> None:
    """A newer state already stored (under another run) sends the run down the replay path."""
    flow_run_id = await make_flow_run(db)
    task_run_id = uuid.uuid4()
    events = lifecycle(task_run_id, flow_run_id)
    bus.publish("events", events[:2])
    await recorder.flush()
    bus.publish("events", [events[2]])
    await recorder.flush()
    bus.publish("events", [events[2]])
    await recorder.flush()
    await assert_completed_once(db, task_run_id, flow_run_id)


async def test_sqlite_bulk_rows_are_stored_exactly_as_sqlalchemy_stores_them(
    sqlite_url: str,
) -> None:
    from flowplane.server.db import dialects

    database = Database(sqlite_url)
    try:
        flow_run_id = await make_flow_run(database)
        bulk, orm = uuid.uuid4(), uuid.uuid4()
        values: dict[str, Any] = {
            "flow_run_id": flow_run_id,
            "task_key": "k",
            "name": "n",
            "state_id": uuid.uuid4(),
            "state_type": "RUNNING",
            "state_timestamp": T0,
            "start_time": dt.datetime(2026, 2, 1, 14, 0, 0, 5, tzinfo=dt.timezone.utc),
            "run_count": 1,
            "total_run_time": 1.5,
            "tags": ["a"],
            "labels": None,
            "empirical_policy": {"retries": 0},
            "task_inputs": {},
            "flow_run_run_count": 1,
            "created": T0,
            "updated": T0,
        }
        async with database.session() as session:
            await dialects.sqlite_insert_many(
                session, t.TaskRun.__table__, [{"id": bulk, "dynamic_key": "0", **values}]
            )
            session.add(t.TaskRun(id=orm, dynamic_key="1", **values))
        async with database.read_session() as session:
            connection = await session.connection()
            rows = (
                await connection.exec_driver_sql("SELECT * FROM task_run ORDER BY dynamic_key")
            ).all()
        first, second = (dict(row._mapping) for row in rows)
        for row in (first, second):
            row.pop("id"), row.pop("dynamic_key")
        assert first == second
        assert first["labels"] == "null"  # as sa.JSON stores None
    finally:
        await database.dispose()
