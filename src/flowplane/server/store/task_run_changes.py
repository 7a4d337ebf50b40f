"""Recording task runs from plain state changes (embedded mode) in bulk, in a few statements per batch.

The engine of this process hands its task-run state changes over as
:class:`~flowplane.schemas.task_run_changes.TaskRunChange` tuples, a batch at a time.
A run first seen in a batch is inserted once, with the bookkeeping of its latest
change, and its states with it, in multi-row statements. A run this recorder inserted
earlier and that has not finished yet (an *open* run: ``task.map`` queues thousands of
Pending runs before any of them starts) is continued the same way: its states are
inserted and its row updated in bulk. Only a run that is neither (its natural key (flow
run, task key, dynamic key) belongs to another run, or it finished already) is left to
the task-run recorder's general path, which merges or replays stored runs.

The caller keeps the set of open runs and applies :class:`Recorded` to it once the
transaction has committed.

On SQLite the rows are bound straight to the driver, many per statement: each
statement runs in SQLite with Python's lock released, so the engine's thread goes on
while the rows are written.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.schemas.base import now_utc
from flowplane.schemas.states import StateDetails
from flowplane.schemas.task_run_changes import TaskRunChange
from flowplane.server.db import dialects
from flowplane.server.db import tables as t

_UTC = dt.timezone.utc
_TERMINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
_TASK_RUN = cast(sa.Table, t.TaskRun.__table__)
_TASK_RUN_STATE = cast(sa.Table, t.TaskRunState.__table__)

#: A run's current state and bookkeeping, as of its latest change.
BOOKKEEPING_COLUMNS = (
    "state_id",
    "state_type",
    "state_name",
    "state_timestamp",
    "run_count",
    "expected_start_time",
    "next_scheduled_start_time",
    "start_time",
    "end_time",
    "total_run_time",
)
#: The columns a new run's row is written with, in order.
RUN_COLUMNS = (
    "id",
    "created",
    "updated",
    "flow_run_id",
    "task_key",
    "dynamic_key",
    "task_version",
    "task_inputs",
    "flow_run_run_count",
    "name",
    *BOOKKEEPING_COLUMNS,
    "tags",
    "labels",
    "empirical_policy",
)
STATE_COLUMNS = (
    "id",
    "created",
    "updated",
    "task_run_id",
    "type",
    "name",
    "timestamp",
    "message",
    "state_details",
    "data",
)

#: The columns a continued run's row gets from its latest change, in order (after its id).
UPDATE_COLUMNS = ("updated", *BOOKKEEPING_COLUMNS)

#: Rows per multi-row statement on SQLite, at most: a 512-row INSERT took 3.5 ms to prepare,
#: paid again by every new process; 64 rows take 0.2 ms.
_SQLITE_ROWS = 64


def _names(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


#: SQLite statements, ``{values}`` standing for a ``VALUES`` list of rows.
_INSERT_RUNS = (
    f'INSERT INTO "task_run" ({_names(RUN_COLUMNS)}) {{values}} ON CONFLICT DO NOTHING RETURNING id'
)
_INSERT_STATES = (
    f'INSERT INTO "task_run_state" ({_names(STATE_COLUMNS)}) {{values}} ON CONFLICT (id) DO NOTHING'
)
_UPDATE_RUNS = (
    'UPDATE "task_run" SET '
    + ", ".join(f'"{c}" = v.column{i}' for i, c in enumerate(UPDATE_COLUMNS, start=2))
    + ' FROM ({values}) AS v WHERE "task_run".id = v.column1'
)


def group_by_run(changes: Sequence[TaskRunChange]) -> dict[uuid.UUID, list[TaskRunChange]]:
    """The changes of each run, in the order they were made."""
    runs: dict[uuid.UUID, list[TaskRunChange]] = {}
    for change in changes:
        found = runs.get(change.id)
        if found is None:
            runs[change.id] = [change]
        else:
            found.append(change)
    return runs


def state_details(change: TaskRunChange) -> StateDetails:
    """The details of a change's state, naming its task run and flow run."""
    return StateDetails.model_validate(
        {**(change.details or {}), "task_run_id": change.id, "flow_run_id": change.flow_run_id}
    )


def _details(change: TaskRunChange) -> dict[str, Any]:
    """A state's details as stored (as the task-run recorder stores them)."""
    return state_details(change).model_dump(mode="json")


@dataclass(slots=True)
class Recorded:
    """What :func:`record_changes` did: the changes it left, and the runs it opened or closed."""

    rest: list[TaskRunChange]
    opened: set[uuid.UUID] = field(default_factory=set)
    closed: set[uuid.UUID] = field(default_factory=set)

    def apply(self, open_runs: set[uuid.UUID]) -> None:
        """Update the caller's open runs (after the transaction committed)."""
        open_runs.difference_update(self.closed)
        open_runs.update(self.opened)


async def record_changes(
    session: AsyncSession, changes: Sequence[TaskRunChange], open_runs: set[uuid.UUID]
) -> Recorded:
    """Insert the new runs of ``changes`` and continue the open ones, with their states.

    Args:
        open_runs: runs this recorder inserted that have not finished (not modified here).

    Returns:
        The changes of the runs neither inserted nor continued (stored already, or their
        natural key is taken), in their original order, and the runs opened and closed.
    """
    runs = group_by_run(changes)
    if not runs:
        return Recorded([])
    new = {rid: group for rid, group in runs.items() if rid not in open_runs}
    continuing = {rid: group for rid, group in runs.items() if rid in open_runs}
    dialect = dialects.dialect_name(session)
    if dialect == "sqlite":
        inserted = await _record_sqlite(session, new, continuing)
    else:
        inserted = await _record_generic(session, dialect, new, continuing)
    if len(inserted) + len(continuing) == len(runs):  # the usual case: nothing left over
        recorded = Recorded([])
    else:
        recorded = Recorded([c for c in changes if c.id not in inserted and c.id not in continuing])
    for rid in inserted:
        if runs[rid][-1].state_type not in _TERMINAL:
            recorded.opened.add(rid)
    for rid, group in continuing.items():
        if group[-1].state_type in _TERMINAL:
            recorded.closed.add(rid)
    return recorded


# --- SQLite: values as stored, bound to the driver --------------------------------------------


async def _record_sqlite(
    session: AsyncSession,
    new: dict[uuid.UUID, list[TaskRunChange]],
    continuing: dict[uuid.UUID, list[TaskRunChange]],
) -> set[uuid.UUID]:
    """Insert ``new`` runs and update ``continuing`` ones, with their states; returns the
    runs inserted."""
    now = dialects.sqlite_datetime(now_utc())
    stamp = _Stamps()
    text = dialects.json_text
    json_cache: dict[int, str] = {}
    flow_run_text: dict[uuid.UUID | None, tuple[str | None, str]] = {None: (None, "null")}

    def cached_json(value: Any) -> str:
        # The policy and tags of one task are the very same objects in each of its runs.
        key = id(value)
        found = json_cache.get(key)
        if found is None:
            found = json_cache[key] = text(value)
        return found

    def states_of(run_id: uuid.UUID, run_hex: str, group: list[TaskRunChange]) -> list[Any]:
        flow_run_id = group[-1].flow_run_id
        flow_run = flow_run_text.get(flow_run_id)
        if flow_run is None:
            assert flow_run_id is not None
            flow_run = flow_run_text[flow_run_id] = (flow_run_id.hex, f'"{flow_run_id}"')
        # What almost every state's details are: the run's and its flow run's ids.
        plain_details = f'{{"flow_run_id":{flow_run[1]},"task_run_id":"{run_id}"}}'
        return [
            (
                change.state_id.hex,
                now,
                now,
                run_hex,
                change.state_type,
                change.state_name,
                stamp(change.timestamp),
                change.message,
                text(_details(change)) if change.details else plain_details,
                "null",
            )
            for change in group
        ]

    def bookkeeping(last: TaskRunChange, state_row: tuple[Any, ...]) -> tuple[Any, ...]:
        """The values of ``BOOKKEEPING_COLUMNS`` (``state_row``: the latest state's row)."""
        return (
            state_row[0],
            last.state_type,
            last.state_name,
            state_row[6],
            last.run_count,
            stamp(last.expected_start_time),
            stamp(last.next_scheduled_start_time),
            stamp(last.start_time),
            stamp(last.end_time),
            last.total_run_time,
        )

    run_rows: list[tuple[Any, ...]] = []
    new_states: dict[str, list[tuple[Any, ...]]] = {}
    for run_id, group in new.items():
        last = group[-1]
        run_hex = run_id.hex
        states = new_states[run_hex] = states_of(run_id, run_hex, group)
        run_rows.append(
            (
                run_hex,
                now,
                now,
                flow_run_text[last.flow_run_id][0],
                last.task_key,
                last.dynamic_key,
                last.task_version,
                text(last.task_inputs),
                last.flow_run_run_count,
                last.name,
                *bookkeeping(last, states[-1]),
                cached_json(last.tags),
                "{}",
                cached_json(last.empirical_policy),
            )
        )
    update_rows: list[tuple[Any, ...]] = []
    state_rows: list[tuple[Any, ...]] = []
    for run_id, group in continuing.items():
        last = group[-1]
        run_hex = run_id.hex
        states = states_of(run_id, run_hex, group)
        state_rows.extend(states)
        update_rows.append((run_hex, now, *bookkeeping(last, states[-1])))

    connection = await session.connection()
    inserted_hex: set[str] = set()
    for sql, params in _statements(_INSERT_RUNS, len(RUN_COLUMNS), run_rows):
        result = await connection.exec_driver_sql(sql, params)
        inserted_hex.update(row[0] for row in result.all())
    for sql, params in _statements(_UPDATE_RUNS, 1 + len(UPDATE_COLUMNS), update_rows):
        await connection.exec_driver_sql(sql, params)
    inserted: set[uuid.UUID] = set()
    for run_id, (run_hex, states) in zip(new, new_states.items(), strict=True):
        if run_hex in inserted_hex:
            inserted.add(run_id)
            state_rows.extend(states)
    for sql, params in _statements(_INSERT_STATES, len(STATE_COLUMNS), state_rows):
        await connection.exec_driver_sql(sql, params)
    return inserted


class _Stamps:
    """Timestamps as SQLite stores them, each distinct datetime object converted once."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[int, str] = {}

    def __call__(self, value: dt.datetime | None) -> str | None:
        if value is None:
            return None
        key = id(value)  # the changes keep every value alive while this lives
        found = self._seen.get(key)
        if found is None:
            if value.tzinfo is _UTC:
                found = value.isoformat(" ", "microseconds")[:-6]
            else:
                found = dialects.sqlite_datetime(value) or ""
            self._seen[key] = found
        return found


def _statements(
    template: str, width: int, rows: list[tuple[Any, ...]]
) -> list[tuple[str, tuple[Any, ...]]]:
    """``template`` over ``rows`` (``width`` values each), with their flat parameters.

    Statements have ``_SQLITE_ROWS`` rows, or a power of two for the rest, so the
    driver's statement cache sees only a handful of distinct texts.
    """
    statements = []
    start = 0
    while start < len(rows):
        size = _SQLITE_ROWS
        left = len(rows) - start
        while size > left:
            size //= 2
        part = rows[start : start + size]
        statements.append((_sql(template, width, size), _flatten(part)))
        start += size
    return statements


@functools.lru_cache(maxsize=64)
def _sql(template: str, width: int, rows: int) -> str:
    marks = "(" + ", ".join("?" * width) + ")"
    return template.format(values="VALUES " + ", ".join([marks] * rows))


def _flatten(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    flat: list[Any] = []
    extend = flat.extend
    for row in rows:
        extend(row)
    return tuple(flat)


# --- other databases: SQLAlchemy Core -----------------------------------------------------------


async def _record_generic(
    session: AsyncSession,
    dialect: str,
    new: dict[uuid.UUID, list[TaskRunChange]],
    continuing: dict[uuid.UUID, list[TaskRunChange]],
) -> set[uuid.UUID]:
    now = now_utc()
    inserted: set[uuid.UUID] = set()
    if new:
        run_rows = [{"id": rid, **_run_values(group[-1], now)} for rid, group in new.items()]
        stmt = (
            dialects.insert(dialect, _TASK_RUN)
            .on_conflict_do_nothing()
            .returning(_TASK_RUN.c.id)
            .execution_options(
                insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(RUN_COLUMNS))
            )
        )
        inserted = set((await session.execute(stmt, run_rows)).scalars().all())
    if continuing:
        columns = UPDATE_COLUMNS
        update = (
            sa.update(_TASK_RUN)
            .where(_TASK_RUN.c.id == sa.bindparam("b_id"))
            .values({c: sa.bindparam(f"v_{c}", type_=_TASK_RUN.c[c].type) for c in columns})
        )
        params = []
        for rid, group in continuing.items():
            values = _run_values(group[-1], now)
            params.append({"b_id": rid, **{f"v_{c}": values[c] for c in columns}})
        await session.execute(update, params)
    state_rows = [
        {
            "id": change.state_id,
            "created": now,
            "updated": now,
            "task_run_id": run_id,
            "type": change.state_type,
            "name": change.state_name,
            "timestamp": change.timestamp,
            "message": change.message,
            "state_details": _details(change)
            if change.details
            else {
                "flow_run_id": change.flow_run_id and str(change.flow_run_id),
                "task_run_id": str(run_id),
            },
            "data": None,
        }
        for run_id, group in [*((rid, new[rid]) for rid in inserted), *continuing.items()]
        for change in group
    ]
    if state_rows:
        stmt = (
            dialects.insert(dialect, _TASK_RUN_STATE)
            .on_conflict_do_nothing(index_elements=[_TASK_RUN_STATE.c.id])
            .execution_options(
                insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(STATE_COLUMNS))
            )
        )
        await session.execute(stmt, state_rows)
    return inserted


def _run_values(last: TaskRunChange, now: dt.datetime) -> dict[str, Any]:
    """A task run's columns (but its id) as of its latest change."""
    return {
        "created": now,
        "updated": now,
        "flow_run_id": last.flow_run_id,
        "task_key": last.task_key,
        "dynamic_key": last.dynamic_key,
        "task_version": last.task_version,
        "task_inputs": last.task_inputs,
        "flow_run_run_count": last.flow_run_run_count,
        "name": last.name,
        "state_id": last.state_id,
        "state_type": last.state_type,
        "state_name": last.state_name,
        "state_timestamp": last.timestamp,
        "run_count": last.run_count,
        "expected_start_time": last.expected_start_time,
        "next_scheduled_start_time": last.next_scheduled_start_time,
        "start_time": last.start_time,
        "end_time": last.end_time,
        "total_run_time": last.total_run_time,
        "tags": last.tags,
        "labels": {},
        "empirical_policy": last.empirical_policy,
    }
