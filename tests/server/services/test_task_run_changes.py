"""Task runs recorded from in-process changes (embedded mode) are stored exactly as from their events."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from flowplane.core.states import StateType
from flowplane.schemas.events import Event
from flowplane.schemas.task_run_changes import TaskRunChange
from flowplane.sdk._records import TaskRunRecord, task_run_change, task_run_event
from flowplane.server import ingestion
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.services.task_run_recorder import record_from_event, record_task_runs
from flowplane.server.store.task_run_changes import record_changes


class _NoSink:
    def emit_event(self, event: Any) -> None: ...

    def emit_log(self, log: dict[str, Any]) -> None: ...

    def flush(self, timeout: float | None = None) -> bool:
        return True


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def make_flow_run(db: Database) -> Any:
    from flowplane.schemas.flow_runs import FlowRun
    from flowplane.sdk._records import FlowRunRecord

    flow_run_id = uuid.uuid4()
    async with db.session() as session:
        flow = t.Flow(name=f"flow-{uuid.uuid4().hex[:8]}")
        session.add(flow)
        await session.flush()
        session.add(t.FlowRun(id=flow_run_id, flow_id=flow.id, name="run", run_count=1))
        flow_id = flow.id
    flow_run = FlowRun(id=flow_run_id, flow_id=flow_id, name="run", run_count=1)
    return FlowRunRecord(flow_run, "flow", _NoSink())


def new_record(flow_run: Any, dynamic_key: str = "0", tags: list[str] | None = None) -> Any:
    return TaskRunRecord(
        f"say-{dynamic_key}",
        "say-abc",
        dynamic_key,
        flow_run,
        tags or ["demo"],
        {"retries": 2, "retry_delay": 0},
        "v1",
        {"x": [{"input_type": "parameter", "name": "x"}]},
        _NoSink(),
    )


HISTORIES: dict[str, list[tuple[StateType, str, dict[str, Any] | None]]] = {
    "completed": [
        (StateType.PENDING, "Pending", None),
        (StateType.RUNNING, "Running", None),
        (StateType.COMPLETED, "Completed", None),
    ],
    "retried": [
        (StateType.PENDING, "Pending", None),
        (StateType.RUNNING, "Running", None),
        (StateType.SCHEDULED, "AwaitingRetry", {"scheduled_time": "2031-01-01T00:00:00+00:00"}),
        (StateType.RUNNING, "Retrying", None),
        (StateType.FAILED, "Failed", None),
    ],
    "cached": [
        (StateType.PENDING, "Pending", None),
        (StateType.COMPLETED, "Cached", {"cache_key": "k"}),
    ],
    "waiting": [
        (StateType.PENDING, "Pending", None),
        (StateType.SCHEDULED, "AwaitingRetry", {"scheduled_time": "2031-01-01T00:00:00+00:00"}),
    ],
}


def changes_of(
    record: Any,
    history: list[tuple[StateType, str, dict[str, Any] | None]],
    messages: bool = True,
    pause: float = 0.002,
) -> list:
    made = []
    for type_, name, details in history:
        time.sleep(pause)  # distinct timestamps, some time spent in each state
        message = f"{name}!" if messages else None
        made.append(record.set_state(type_, name, message=message, details=details))
    return made


RUN_FIELDS = (
    "flow_run_id",
    "task_key",
    "dynamic_key",
    "name",
    "task_version",
    "task_inputs",
    "tags",
    "empirical_policy",
    "flow_run_run_count",
    "state_id",
    "state_type",
    "state_name",
    "state_timestamp",
    "run_count",
    "start_time",
    "end_time",
    "expected_start_time",
    "next_scheduled_start_time",
)


async def stored(db: Database, task_run_id: uuid.UUID) -> tuple[dict[str, Any], list[Any]]:
    async with db.read_session() as session:
        run = await session.get(t.TaskRun, task_run_id)
        assert run is not None
        fields = {name: getattr(run, name) for name in RUN_FIELDS}
        # Timestamps are in microseconds, so both ways of summing the time spent running
        # agree to the microsecond (not always at a coarser rounding boundary).
        fields["total_run_time"] = round(run.total_run_time, 6)
        rows = await session.execute(
            sa.select(t.TaskRunState)
            .where(t.TaskRunState.task_run_id == task_run_id)
            .order_by(t.TaskRunState.timestamp)
        )
        states = [
            (
                s.id,
                s.type,
                s.name,
                s.timestamp,
                s.message,
                {k: v for k, v in s.state_details.items() if v not in (None, False)},
            )
            for s in rows.scalars()
        ]
    return fields, states


async def delete_run(db: Database, task_run_id: uuid.UUID) -> None:
    async with db.session() as session:
        await session.execute(
            sa.delete(t.TaskRunState).where(t.TaskRunState.task_run_id == task_run_id)
        )
        await session.execute(sa.delete(t.TaskRun).where(t.TaskRun.id == task_run_id))


@pytest.mark.parametrize("history", sorted(HISTORIES))
async def test_a_run_is_stored_as_its_events_would_store_it(db: Database, history: str) -> None:
    flow_run = await make_flow_run(db)
    record = new_record(flow_run)
    made = changes_of(record, HISTORIES[history])

    async with db.session() as session:
        rest = (await record_changes(session, [task_run_change(c) for c in made], set())).rest
    assert rest == []
    fast = await stored(db, record.id)

    await delete_run(db, record.id)
    events = [Event.model_validate(task_run_event(c)).receive() for c in made]
    async with db.session() as session:
        await record_task_runs(session, [record_from_event(e) for e in events])
    from_events = await stored(db, record.id)

    assert fast == from_events
    assert fast[0]["state_name"] == HISTORIES[history][-1][1]
    assert [s[2] for s in fast[1]] == [name for _, name, _ in HISTORIES[history]]


async def test_plain_and_other_runs_in_one_batch_are_stored_as_their_events_would_store_them(
    db: Database,
) -> None:
    # Pending -> Running -> Completed with no message or details of its own is written in
    # compact statements; runs with anything more go through the general ones.
    flow_run = await make_flow_run(db)
    kinds = [
        ("completed", False),
        ("completed", True),
        ("completed", False),
        ("retried", False),
        ("cached", False),
        ("waiting", False),
    ]
    records, changes = [], []
    for i in range(60):  # plain runs span several statements
        history, messages = kinds[i % len(kinds)]
        record = new_record(flow_run, dynamic_key=str(i))
        made = changes_of(record, HISTORIES[history], messages=messages, pause=0.0002)
        records.append((record, made))
        changes += [task_run_change(c) for c in made]

    async with db.session() as session:
        assert (await record_changes(session, changes, set())).rest == []
    fast = [await stored(db, record.id) for record, _ in records]

    for record, _ in records:
        await delete_run(db, record.id)
    events = [Event.model_validate(task_run_event(c)).receive() for _, m in records for c in m]
    async with db.session() as session:
        await record_task_runs(session, [record_from_event(e) for e in events])
    from_events = [await stored(db, record.id) for record, _ in records]

    assert fast == from_events
    plain = fast[0]
    assert [s[2] for s in plain[1]] == ["Pending", "Running", "Completed"]
    assert [s[4] for s in plain[1]] == [None, None, None]
    assert plain[0]["state_id"] == plain[1][-1][0] and plain[0]["run_count"] == 1
    assert plain[0]["start_time"] == plain[1][1][3] and plain[0]["end_time"] == plain[1][2][3]
    assert plain[0]["expected_start_time"] == plain[1][0][3]
    assert plain[0]["total_run_time"] == pytest.approx(
        (plain[1][2][3] - plain[1][1][3]).total_seconds(), abs=1e-4
    )


async def test_a_plain_run_with_a_taken_natural_key_records_under_the_existing_run(
    db: Database,
) -> None:
    flow_run = await make_flow_run(db)
    app = SimpleNamespace(state=SimpleNamespace(db=db))
    earlier = new_record(flow_run, dynamic_key="0")
    await ingestion.record_task_run_changes(
        app, [task_run_change(c) for c in changes_of(earlier, HISTORIES["retried"])]
    )
    again = new_record(flow_run, dynamic_key="0")
    other = new_record(flow_run, dynamic_key="1")
    changes = [
        task_run_change(c)
        for r in (again, other)
        for c in changes_of(r, HISTORIES["completed"], messages=False)
    ]

    await ingestion.record_task_run_changes(app, changes)

    async with db.read_session() as session:
        ids = set((await session.execute(sa.select(t.TaskRun.id))).scalars())
    assert ids == {earlier.id, other.id}
    merged, states = await stored(db, earlier.id)
    assert merged["state_type"] == "COMPLETED" and len(states) == 8
    fields, states = await stored(db, other.id)
    assert fields["state_type"] == "COMPLETED"
    assert [s[2] for s in states] == ["Pending", "Running", "Completed"]


async def test_a_run_split_across_batches_continues_from_the_stored_run(db: Database) -> None:
    flow_run = await make_flow_run(db)
    record = new_record(flow_run)
    made = changes_of(record, HISTORIES["retried"])
    first, second = [task_run_change(c) for c in made[:2]], [task_run_change(c) for c in made[2:]]
    app = SimpleNamespace(state=SimpleNamespace(db=db))

    await ingestion.record_task_run_changes(app, first)
    async with db.session() as session:
        assert (
            await record_changes(session, second, set())
        ).rest == second  # stored already: not inserted
    await ingestion.record_task_run_changes(app, second)
    await ingestion.record_task_run_changes(app, second)  # a repeat changes nothing
    split = await stored(db, record.id)

    await delete_run(db, record.id)
    await ingestion.record_task_run_changes(app, first + second)
    whole = await stored(db, record.id)
    assert split == whole
    assert split[0]["run_count"] == 2 and split[0]["state_type"] == "FAILED"
    assert len(split[1]) == 5


async def test_a_taken_natural_key_records_under_the_existing_run(db: Database) -> None:
    flow_run = await make_flow_run(db)
    app = SimpleNamespace(state=SimpleNamespace(db=db))
    earlier = new_record(flow_run, dynamic_key="0")
    await ingestion.record_task_run_changes(
        app, [task_run_change(c) for c in changes_of(earlier, HISTORIES["completed"])]
    )
    again = new_record(flow_run, dynamic_key="0")  # e.g. the same task in a re-run flow
    other = new_record(flow_run, dynamic_key="1")
    changes = [task_run_change(c) for c in changes_of(again, HISTORIES["retried"])]
    changes += [task_run_change(c) for c in changes_of(other, HISTORIES["completed"])]

    await ingestion.record_task_run_changes(app, changes)

    async with db.read_session() as session:
        ids = set((await session.execute(sa.select(t.TaskRun.id))).scalars())
    assert ids == {earlier.id, other.id}
    merged, states = await stored(db, earlier.id)
    assert merged["state_type"] == "FAILED"
    assert len(states) == 8
    assert (await stored(db, other.id))[0]["state_type"] == "COMPLETED"


async def test_changes_of_a_deleted_flow_run_are_dropped_and_the_rest_recorded(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    kept, gone = await make_flow_run(db), await make_flow_run(db)
    async with db.session() as session:
        await session.execute(sa.delete(t.FlowRun).where(t.FlowRun.id == gone.id))
    app = SimpleNamespace(state=SimpleNamespace(db=db))
    alive, orphan = new_record(kept), new_record(gone)
    changes: list[TaskRunChange] = [
        task_run_change(c) for c in changes_of(alive, HISTORIES["completed"])
    ] + [task_run_change(c) for c in changes_of(orphan, HISTORIES["completed"])]

    with caplog.at_level(logging.WARNING, logger="flowplane.server.ingestion"):
        await ingestion.record_task_run_changes(app, changes)

    assert (await stored(db, alive.id))[0]["state_type"] == "COMPLETED"
    async with db.read_session() as session:
        assert await session.get(t.TaskRun, orphan.id) is None
    assert "Dropped 3 task-run state changes" in caplog.text


async def test_many_runs_in_one_batch_span_several_statements(db: Database) -> None:
    flow_run = await make_flow_run(db)
    records = [new_record(flow_run, dynamic_key=str(i)) for i in range(1300)]
    changes = []
    for record in records:
        for type_, name, _ in HISTORIES["completed"]:
            changes.append(task_run_change(record.set_state(type_, name)))
    async with db.session() as session:
        assert (await record_changes(session, changes, set())).rest == []
    async with db.read_session() as session:
        runs = (await session.execute(sa.select(sa.func.count()).select_from(t.TaskRun))).scalar()
        states = (
            await session.execute(sa.select(sa.func.count()).select_from(t.TaskRunState))
        ).scalar()
    assert (runs, states) == (1300, 3900)


async def test_open_runs_continue_in_bulk_and_close_when_final(db: Database) -> None:
    flow_run = await make_flow_run(db)
    records = [new_record(flow_run, dynamic_key=str(i)) for i in range(5)]
    # As task.map does: every run's Pending first, in a batch of its own.
    pending = [task_run_change(r.set_state(StateType.PENDING, "Pending")) for r in records]
    rest = []
    for r in records:
        rest.append(task_run_change(r.set_state(StateType.RUNNING, "Running")))
        rest.append(task_run_change(r.set_state(StateType.COMPLETED, "Completed")))
    open_runs: set[int] = set()

    async with db.session() as session:
        first = await record_changes(session, pending, open_runs)
    first.apply(open_runs)
    assert first.rest == [] and open_runs == {r.id.int for r in records}
    async with db.session() as session:
        second = await record_changes(session, rest, open_runs)
    second.apply(open_runs)
    assert second.rest == [] and open_runs == set()

    for r in records:
        fields, states = await stored(db, r.id)
        assert [s[2] for s in states] == ["Pending", "Running", "Completed"]
        assert fields["state_id"] == states[-1][0] and fields["state_type"] == "COMPLETED"
        assert fields["run_count"] == 1 and fields["end_time"] == states[-1][3]
        assert fields["total_run_time"] == pytest.approx(
            (states[-1][3] - states[1][3]).total_seconds(), abs=1e-4
        )


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),  # a whole second
        dt.datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),
    ],
)
def test_utc_timestamps_are_stored_as_the_dialect_stores_them(value: dt.datetime) -> None:
    from flowplane.server.db.dialects import sqlite_datetime
    from flowplane.server.store.task_run_changes_sqlite import _utc_texts

    utc_text = _utc_texts()
    assert utc_text(value) == sqlite_datetime(value)
    assert utc_text(value + dt.timedelta(microseconds=1)) == sqlite_datetime(
        value + dt.timedelta(microseconds=1)
    )  # the same second, from the second's text remembered
