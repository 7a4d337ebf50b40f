"""The task-run recorder: builds task runs and their state histories from client-emitted events.

Clients orchestrate task runs themselves and report each state change as a
``prefect.task-run.<State>`` event (the event id is the state id, ``occurred`` its
timestamp, the payload carries ``task_run``, ``validated_state`` and ``initial_state``,
and the related resource in role ``flow-run`` names the flow run). The recorder
writes them in batches, one transaction per batch, and is indifferent to the order
and number of times events arrive: a state is stored once (by id), the run's current
state is its latest by timestamp, and the bookkeeping (run count, start and end
times, run time, expected start) is the whole ordered history folded through
:func:`flowplane.core.transitions.bookkeeping`. When a run's new states all come after
its stored current state (the usual case), the fold continues from the stored run
instead of replaying the history; otherwise the history is read and replayed. Events
whose flow run does not exist yet are parked and retried (see
:mod:`flowplane.server.services.batching`).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from pydantic import Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core.states import StateType, default_name, is_terminal
from flowplane.core.transitions import RunFacts, RunKind, RunUpdates, StateFacts, bookkeeping
from flowplane.schemas.base import UTCDateTime, WireModel, now_utc
from flowplane.schemas.events import ReceivedEvent
from flowplane.schemas.states import StateDetails
from flowplane.schemas.task_run_changes import TaskRunChange
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.events.bus import EventBus
from flowplane.server.services.batching import BatchSettings, BatchWriter

logger = logging.getLogger("flowplane.server.services.task_run_recorder")

TASK_RUN_EVENT_PREFIX = "prefect.task-run."
TASK_RUN_RESOURCE_PREFIX = "prefect.task-run."
FLOW_RUN_RESOURCE_PREFIX = "prefect.flow-run."


# --- reading an event ----------------------------------------------------------------------


class _TaskRunPayload(WireModel):
    """The task run as the event carries it (no id, flow run or state fields)."""

    name: str = ""
    task_key: str
    dynamic_key: str
    cache_key: str | None = None
    cache_expiration: UTCDateTime | None = None
    task_version: str | None = None
    empirical_policy: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] | None = Field(default_factory=dict)
    task_inputs: dict[str, Any] = Field(default_factory=dict)
    flow_run_run_count: int = 0


class _StatePayload(WireModel):
    type: StateType
    name: str | None = None
    message: str | None = None
    state_details: dict[str, Any] = Field(default_factory=dict)
    data: Any = None


class _EventPayload(WireModel):
    """The parts of a task-run event's payload the recorder reads (validated in one call)."""

    task_run: _TaskRunPayload
    validated_state: _StatePayload


@dataclass(slots=True)  # not frozen: a frozen dataclass costs a setattr call per field
class TaskRunRecord:
    """One state change of one task run, read from an event.

    ``details`` is the state's details as stored (JSON), with ``task_run_id`` the id
    the event names; the recorder writes the id it records the run under.
    """

    event: ReceivedEvent | None  # None: a change handed over in process (embedded mode)
    task_run_id: uuid.UUID
    flow_run_id: uuid.UUID | None
    task_run: _TaskRunPayload
    state_id: uuid.UUID
    state_type: StateType
    state_name: str
    timestamp: datetime
    message: str | None
    details: dict[str, Any]
    data: Any
    state: StateFacts
    order: tuple[datetime, int, uuid.UUID]

    @property
    def natural_key(self) -> tuple[uuid.UUID, str, str] | None:
        """(flow run, task key, dynamic key): unique among a flow run's task runs."""
        if self.flow_run_id is None:
            return None
        return (self.flow_run_id, self.task_run.task_key, self.task_run.dynamic_key)

    def facts(self) -> StateFacts:
        return self.state


@functools.lru_cache(maxsize=16_384)  # a flow run's id comes with each of its task runs' events
def _object_id(resource_id: str, prefix: str) -> uuid.UUID | None:
    if not resource_id.startswith(prefix):
        return None
    try:
        return uuid.UUID(resource_id[len(prefix) :])
    except ValueError:
        return None


def is_task_run_state_event(event: ReceivedEvent) -> bool:
    """A client-orchestrated task-run state change (server-side ones are recorded already)."""
    return (
        event.event.startswith(TASK_RUN_EVENT_PREFIX)
        and event.resource.get("prefect.orchestration", "client") == "client"
        and isinstance(event.payload.get("task_run"), dict)
        and isinstance(event.payload.get("validated_state"), dict)
    )


@functools.cache
def _empty_details() -> dict[str, Any]:
    """``StateDetails()`` as stored: the details of almost every client state."""
    return StateDetails().model_dump(mode="json")


def record_from_event(event: ReceivedEvent) -> TaskRunRecord:
    """The task run and state an event describes.

    Raises:
        ValueError: the event is not a well-formed task-run state event.
    """
    task_run_id = _object_id(event.resource_id, TASK_RUN_RESOURCE_PREFIX)
    if task_run_id is None:
        raise ValueError(f"not a task run resource: {event.resource_id!r}")
    flow_run_id = None
    for related in event.related:
        if related.get("prefect.resource.role") == "flow-run":
            flow_run_id = _object_id(related["prefect.resource.id"], FLOW_RUN_RESOURCE_PREFIX)
            if flow_run_id is not None:
                break
    try:
        payload = _EventPayload.model_validate(event.payload)
        state = payload.validated_state
        if state.state_details:
            details = StateDetails.model_validate(
                {**state.state_details, "task_run_id": task_run_id, "flow_run_id": flow_run_id}
            )
            stored = details.model_dump(mode="json")
            facts = state_facts(state.type, "", event.occurred, details)
        else:
            stored = dict(_empty_details())
            stored["flow_run_id"] = None if flow_run_id is None else str(flow_run_id)
            stored["task_run_id"] = str(task_run_id)
            facts = None
    except (KeyError, ValidationError) as exc:
        raise ValueError(f"malformed task run event {event.id}: {exc}") from exc
    name = state.name or default_name(state.type)
    if facts is None:
        facts = StateFacts(type=state.type, name=name, timestamp=event.occurred)
    else:
        facts = replace(facts, name=name)
    return TaskRunRecord(
        event=event,
        task_run_id=task_run_id,
        flow_run_id=flow_run_id,
        task_run=payload.task_run,
        state_id=event.id,
        state_type=state.type,
        state_name=name,
        timestamp=event.occurred,
        message=state.message,
        details=stored,
        data=state.data,
        state=facts,
        order=history_order(event.id, facts),
    )


def record_from_change(change: TaskRunChange) -> TaskRunRecord:
    """The task run and state a plain change (embedded mode) describes."""
    state_type = StateType(change.state_type)
    details = change.state_details()
    state_id = change.state_uuid()
    facts = state_facts(state_type, change.state_name, change.timestamp, details)
    return TaskRunRecord(
        event=None,
        task_run_id=change.id,
        flow_run_id=change.flow_run_id,
        task_run=_TaskRunPayload.model_construct(
            name=change.name,
            task_key=change.task_key,
            dynamic_key=change.dynamic_key,
            cache_key=None,
            cache_expiration=None,
            task_version=change.task_version,
            empirical_policy=change.empirical_policy,
            tags=change.tags,
            labels={},
            task_inputs=change.task_inputs,
            flow_run_run_count=change.flow_run_run_count,
        ),
        state_id=state_id,
        state_type=state_type,
        state_name=change.state_name,
        timestamp=change.timestamp,
        message=change.message,
        details=details.model_dump(mode="json"),
        data=None,
        state=facts,
        order=history_order(state_id, facts),
    )


# --- the history, purely -----------------------------------------------------------------

#: Among states with the same timestamp, the one that must have come later sorts later.
_TYPE_RANK = {
    StateType.SCHEDULED: 0,
    StateType.PENDING: 1,
    StateType.RUNNING: 2,
    StateType.PAUSED: 3,
    StateType.CANCELLING: 4,
}


def state_facts(
    type_: StateType, name: str, timestamp: datetime, details: StateDetails | None
) -> StateFacts:
    return StateFacts(
        type=type_,
        name=name,
        timestamp=timestamp,
        scheduled_time=details.scheduled_time if details else None,
        pause_reschedule=bool(details.pause_reschedule) if details else False,
        pause_key=details.pause_key if details else None,
    )


def history_order(state_id: uuid.UUID, facts: StateFacts) -> tuple[datetime, int, uuid.UUID]:
    """The sort key of a state in its run's history (ids order as their text does)."""
    rank = 5 if is_terminal(facts.type) else _TYPE_RANK.get(facts.type, 5)
    return (facts.timestamp, rank, state_id)


def replay(
    history: Iterable[tuple[uuid.UUID, StateFacts]], run: RunFacts | None = None
) -> tuple[uuid.UUID, RunUpdates] | None:
    """Fold a run's states, in history order, through the bookkeeping rules.

    Args:
        history: (state id, facts) pairs, in any order.
        run: the run before the first of them (default: a run with no state yet).

    Returns:
        The id of the current (latest) state and the run's fields after it, or
        ``None`` for an empty history.
    """
    ordered = sorted(history, key=lambda item: history_order(*item))
    run = run or RunFacts(kind=RunKind.TASK, state=None)
    result: tuple[uuid.UUID, RunUpdates] | None = None
    for state_id, facts in ordered:
        updates = bookkeeping(run, facts)
        run = RunFacts(
            kind=RunKind.TASK,
            state=facts,
            run_count=updates.run_count,
            start_time=updates.start_time,
            end_time=updates.end_time,
            total_run_time=updates.total_run_time,
            expected_start_time=updates.expected_start_time,
        )
        result = (state_id, updates)
    return result


# --- writing -------------------------------------------------------------------------------

_TASK_RUN = cast(sa.Table, t.TaskRun.__table__)
_TASK_RUN_STATE = cast(sa.Table, t.TaskRunState.__table__)


class _NaturalKeyConflict(Exception):
    """Another writer created a task run with the same natural key meanwhile; retry."""


def _payload_columns(record: TaskRunRecord) -> dict[str, Any]:
    run = record.task_run
    return {
        "name": run.name,
        "cache_key": run.cache_key,
        "cache_expiration": run.cache_expiration,
        "task_version": run.task_version,
        "empirical_policy": run.empirical_policy,
        "tags": run.tags,
        "labels": run.labels,
        "task_inputs": run.task_inputs,
        "flow_run_run_count": run.flow_run_run_count,
    }


def _state_columns(state_id: uuid.UUID, updates: RunUpdates) -> dict[str, Any]:
    return {
        "state_id": state_id,
        "state_type": updates.state_type.value,
        "state_name": updates.state_name,
        "state_timestamp": updates.state_timestamp,
        "run_count": updates.run_count,
        "start_time": updates.start_time,
        "end_time": updates.end_time,
        "total_run_time": updates.total_run_time.total_seconds(),
        "expected_start_time": updates.expected_start_time,
        "next_scheduled_start_time": updates.next_scheduled_start_time,
    }


@dataclass(frozen=True, slots=True)
class _StoredRun:
    """A stored task run: its identity, and its current state and bookkeeping."""

    id: uuid.UUID
    natural_key: tuple[uuid.UUID, str, str] | None
    state_id: uuid.UUID | None
    state: StateFacts | None
    run: RunFacts


def _stored_run(row: Any) -> _StoredRun:
    state = None
    if row.state_id is not None and row.state_type is not None:
        # The rules read only the type and time of the state a run leaves.
        state = StateFacts(
            type=StateType(row.state_type), name=row.state_name or "", timestamp=row.state_timestamp
        )
    return _StoredRun(
        id=row.id,
        natural_key=(
            (row.flow_run_id, row.task_key, row.dynamic_key)
            if row.flow_run_id is not None
            else None
        ),
        state_id=row.state_id,
        state=state,
        run=RunFacts(
            kind=RunKind.TASK,
            state=state,
            run_count=row.run_count,
            start_time=row.start_time,
            end_time=row.end_time,
            total_run_time=timedelta(seconds=row.total_run_time or 0.0),
            expected_start_time=row.expected_start_time,
        ),
    )


async def _existing_task_runs(
    session: AsyncSession, records: Sequence[TaskRunRecord]
) -> list[_StoredRun]:
    """The stored task runs that ``records`` name, by id or by natural key."""
    ids = {r.task_run_id for r in records}
    keys = {k for r in records if (k := r.natural_key) is not None}
    tr = t.TaskRun
    condition: sa.ColumnElement[bool] = tr.id.in_(ids)
    if keys:
        condition = sa.or_(
            condition, sa.tuple_(tr.flow_run_id, tr.task_key, tr.dynamic_key).in_(list(keys))
        )
    rows = await session.execute(
        sa.select(
            tr.id,
            tr.flow_run_id,
            tr.task_key,
            tr.dynamic_key,
            tr.state_id,
            tr.state_type,
            tr.state_name,
            tr.state_timestamp,
            tr.run_count,
            tr.start_time,
            tr.end_time,
            tr.total_run_time,
            tr.expected_start_time,
        ).where(condition)
    )
    return [_stored_run(row) for row in rows]


async def _stored_state_ids(
    session: AsyncSession, dialect: str, state_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of ``state_ids`` are stored already (under any task run)."""
    if not state_ids:
        return set()
    if dialect == "sqlite":
        found = await dialects.sqlite_existing(
            session, _TASK_RUN_STATE, "id", (i.hex for i in state_ids)
        )
        return {uuid.UUID(hex=h) for h in found}
    s = t.TaskRunState
    result = await session.execute(sa.select(s.id).where(s.id.in_(state_ids)))
    return set(result.scalars().all())


async def _stored_histories(
    session: AsyncSession, run_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[uuid.UUID, StateFacts]]:
    """The stored states of ``run_ids``, by run and state id."""
    history: dict[uuid.UUID, dict[uuid.UUID, StateFacts]] = {tid: {} for tid in run_ids}
    if not run_ids:
        return history
    s = t.TaskRunState
    rows = await session.execute(
        sa.select(s.id, s.task_run_id, s.type, s.name, s.timestamp, s.state_details).where(
            s.task_run_id.in_(run_ids)
        )
    )
    for row in rows:
        details = StateDetails.model_validate(row.state_details or {})
        history[row.task_run_id][row.id] = state_facts(
            StateType(row.type), row.name, row.timestamp, details
        )
    return history


async def record_task_runs(session: AsyncSession, records: Sequence[TaskRunRecord]) -> None:
    """Write the task runs and states of ``records`` within ``session``'s transaction.

    A task run whose natural key (flow run, task key, dynamic key) already belongs to
    another id is recorded under that id. Flow runs named must exist.
    """
    unique: dict[uuid.UUID, TaskRunRecord] = {}
    for record in sorted(records, key=lambda r: r.timestamp):
        unique.setdefault(record.state_id, record)
    if not unique:
        return
    batch = list(unique.values())
    stored_runs = await _existing_task_runs(session, batch)
    existing = {run.id: run for run in stored_runs}
    existing_keys = {run.natural_key: run.id for run in stored_runs if run.natural_key}

    # Decide each record's task run id (canonical when a natural key is already taken).
    canonical: dict[uuid.UUID, uuid.UUID] = {}
    batch_keys: dict[tuple[uuid.UUID, str, str], uuid.UUID] = {}
    for record in batch:
        tid, key = record.task_run_id, record.natural_key
        if tid in canonical:
            continue
        if tid in existing:
            canonical[tid] = tid
        elif key is not None and key in existing_keys:
            canonical[tid] = existing_keys[key]
        elif key is not None and key in batch_keys:
            canonical[tid] = batch_keys[key]
        else:
            canonical[tid] = tid
            if key is not None:
                batch_keys[key] = tid
    groups: dict[uuid.UUID, list[TaskRunRecord]] = {}
    for record in batch:
        groups.setdefault(canonical[record.task_run_id], []).append(record)

    # A stored run continues from its stored fields when every new state comes after its
    # current one and none is stored yet; any other stored run replays its history.
    dialect = dialects.dialect_name(session)
    continuing: dict[uuid.UUID, list[TaskRunRecord]] = {}
    replaying: list[uuid.UUID] = []
    for tid, group in groups.items():
        stored = existing.get(tid)
        if stored is None:
            continue
        if stored.state is not None and stored.state_id is not None:
            current = history_order(stored.state_id, stored.state)
            if min(r.order for r in group) > current:
                continuing[tid] = group
                continue
        replaying.append(tid)
    if continuing:
        repeated = await _stored_state_ids(
            session, dialect, [r.state_id for group in continuing.values() for r in group]
        )
        for tid in [tid for tid, g in continuing.items() if any(r.state_id in repeated for r in g)]:
            del continuing[tid]
            replaying.append(tid)
    history = await _stored_histories(session, replaying)

    now = now_utc()
    new_rows: list[dict[str, Any]] = []
    updates_full: list[dict[str, Any]] = []
    updates_state_only: list[dict[str, Any]] = []
    state_rows: list[dict[str, Any]] = []
    for tid, group in groups.items():
        states = history.get(tid)
        if states is None:  # a new run, or one continuing from its stored fields
            fresh = group
            stored = existing.get(tid)
            replayed = replay(
                ((r.state_id, r.state) for r in fresh), stored.run if stored else None
            )
        else:
            fresh = [r for r in group if r.state_id not in states]
            if not fresh:
                continue  # every event of this run was a repeat
            for r in fresh:
                states[r.state_id] = r.state
            replayed = replay(states.items())
        by_state = {r.state_id: r for r in fresh}
        task_run_id = str(tid)
        for r in fresh:
            details = r.details
            if details["task_run_id"] != task_run_id:
                details = {**details, "task_run_id": task_run_id}
            state_rows.append(
                {
                    "id": r.state_id,
                    "created": now,
                    "updated": now,
                    "task_run_id": tid,
                    "type": r.state_type.value,
                    "name": r.state_name,
                    "timestamp": r.timestamp,
                    "message": r.message,
                    "state_details": details,
                    "data": r.data,
                }
            )
        assert replayed is not None
        current_id, updates = replayed
        columns = _state_columns(current_id, updates)
        latest = by_state.get(current_id)
        if tid not in existing:
            source = latest or max(fresh, key=lambda r: r.order)
            new_rows.append(
                {
                    "id": tid,
                    "created": now,
                    "updated": now,
                    "flow_run_id": source.flow_run_id,
                    "task_key": source.task_run.task_key,
                    "dynamic_key": source.task_run.dynamic_key,
                    **_payload_columns(source),
                    **columns,
                }
            )
        elif latest is not None:
            updates_full.append({"id": tid, "updated": now, **_payload_columns(latest), **columns})
        else:
            updates_state_only.append({"id": tid, "updated": now, **columns})

    for rows_ in (new_rows, updates_full, updates_state_only):
        rows_.sort(key=lambda row: row["id"])  # a UUID sorts as its text
    if dialect == "sqlite":
        # The write lock is held since the first read: what was found stored is still so.
        await dialects.sqlite_insert_many(session, _TASK_RUN, new_rows)
        await dialects.sqlite_update_many(session, _TASK_RUN, updates_full)
        await dialects.sqlite_update_many(session, _TASK_RUN, updates_state_only)
        await dialects.sqlite_insert_many(
            session, _TASK_RUN_STATE, state_rows, do_nothing_on=("id",)
        )
        return
    if new_rows:
        stmt = (
            dialects.insert(dialect, _TASK_RUN)
            .on_conflict_do_nothing()
            .returning(_TASK_RUN.c.id)
            .execution_options(
                insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(new_rows[0]))
            )
        )
        inserted = set((await session.execute(stmt, new_rows)).scalars().all())
        if len(inserted) != len(new_rows):
            raise _NaturalKeyConflict(
                "a task run was created concurrently; the batch will be retried"
            )
    for rows_ in (updates_full, updates_state_only):
        if rows_:
            await _update_by_id(session, rows_)
    if state_rows:
        stmt = (
            dialects.insert(dialect, _TASK_RUN_STATE)
            .on_conflict_do_nothing(index_elements=[_TASK_RUN_STATE.c.id])
            .returning(_TASK_RUN_STATE.c.id)
            .execution_options(
                insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(state_rows[0]))
            )
        )
        await session.execute(stmt, state_rows)


async def _update_by_id(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE of the columns in ``rows`` (each has ``id``)."""
    table = _TASK_RUN
    columns = [k for k in rows[0] if k != "id"]
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"))
        .values({name: sa.bindparam(f"v_{name}", type_=table.c[name].type) for name in columns})
    )
    params = [{"b_id": row["id"], **{f"v_{name}": row[name] for name in columns}} for row in rows]
    await session.execute(stmt, params)


# --- the service ---------------------------------------------------------------------------


class TaskRunRecorder(BatchWriter):
    """Consumes task-run state events from the bus and records them in batches."""

    name = "task-run-recorder"
    topic = "events"

    def __init__(self, db: Database, bus: EventBus, settings: BatchSettings | None = None) -> None:
        super().__init__(bus, settings or BatchSettings(batch_size=500, window=0.05))
        self.db = db

    def accepts(self, item: Any) -> bool:
        return isinstance(item, ReceivedEvent) and is_task_run_state_event(item)

    async def write(self, items: Sequence[Any]) -> Sequence[Any]:
        records: list[TaskRunRecord] = []
        for event in items:
            try:
                records.append(record_from_event(event))
            except ValueError as exc:
                logger.warning("Ignoring a task run event: %s", exc)
        if not records:
            return ()
        async with self.db.session() as session:
            ready, waiting = await split_by_flow_run(session, records)
            await record_task_runs(session, ready)
        return [r.event for r in waiting if r.event is not None]


async def split_by_flow_run(
    session: AsyncSession, records: Sequence[TaskRunRecord]
) -> tuple[list[TaskRunRecord], list[TaskRunRecord]]:
    """``records`` whose flow run is stored (or have none), and those whose flow run is not."""
    wanted = {r.flow_run_id for r in records if r.flow_run_id is not None}
    found: set[uuid.UUID] = set()
    if wanted:
        result = await session.execute(sa.select(t.FlowRun.id).where(t.FlowRun.id.in_(wanted)))
        found = set(result.scalars().all())
    ready = [r for r in records if r.flow_run_id is None or r.flow_run_id in found]
    waiting = [r for r in records if r.flow_run_id is not None and r.flow_run_id not in found]
    return ready, waiting
