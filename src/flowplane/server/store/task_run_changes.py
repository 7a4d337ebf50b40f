"""Recording task runs from plain state changes (embedded mode) in bulk: new runs in a few statements.

The engine of this process hands its task-run state changes over as
:class:`~flowplane.schemas.task_run_changes.TaskRunChange` tuples, a batch at a time.
Almost every run of a batch is new (its whole life, Pending to Completed, fits in one
batch): it is inserted once, with the bookkeeping of its latest change, and its states
with it, in multi-row statements. A run that is stored already (its earlier states
came in an earlier batch) or whose natural key (flow run, task key, dynamic key)
belongs to another run is not inserted here: its changes are returned, for the
task-run recorder's general path, which continues or merges stored runs.

On SQLite the rows are bound straight to the driver, many per statement: each
statement runs in SQLite with Python's lock released, so the engine's thread goes on
while the rows are written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.schemas.base import now_utc
from flowplane.schemas.states import StateDetails
from flowplane.schemas.task_run_changes import TaskRunChange
from flowplane.server.db import dialects
from flowplane.server.db import tables as t

_UTC = dt.timezone.utc
_TASK_RUN = cast(sa.Table, t.TaskRun.__table__)
_TASK_RUN_STATE = cast(sa.Table, t.TaskRunState.__table__)

#: The columns written, in order.
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

#: Rows per multi-row INSERT on SQLite: well under its 32,766 bound parameters.
_SQLITE_CHUNK = {RUN_COLUMNS: 512, STATE_COLUMNS: 1024}


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


def _details(change: TaskRunChange) -> dict[str, Any]:
    """A state's details as stored (as the task-run recorder stores them)."""
    return StateDetails.model_validate(
        {**(change.details or {}), "task_run_id": change.id, "flow_run_id": change.flow_run_id}
    ).model_dump(mode="json")


async def record_new_runs(
    session: AsyncSession, changes: Sequence[TaskRunChange]
) -> list[TaskRunChange]:
    """Insert the runs of ``changes`` that are not stored yet, with their states.

    Returns:
        The changes of the runs that were not inserted (stored already, or their
        natural key is taken), in their original order.
    """
    runs = group_by_run(changes)
    if not runs:
        return []
    dialect = dialects.dialect_name(session)
    if dialect == "sqlite":
        inserted = await _insert_sqlite(session, runs)
    else:
        inserted = await _insert_generic(session, dialect, runs)
    return [c for c in changes if c.id not in inserted]


# --- SQLite: values as stored, bound to the driver --------------------------------------------


async def _insert_sqlite(
    session: AsyncSession, runs: dict[uuid.UUID, list[TaskRunChange]]
) -> set[uuid.UUID]:
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

    run_rows: list[tuple[Any, ...]] = []
    state_rows: dict[uuid.UUID, list[tuple[Any, ...]]] = {}
    for run_id, group in runs.items():
        last = group[-1]
        flow_run = flow_run_text.get(last.flow_run_id)
        if flow_run is None:
            assert last.flow_run_id is not None
            flow_run = flow_run_text[last.flow_run_id] = (
                last.flow_run_id.hex,
                f'"{last.flow_run_id}"',
            )
        run_hex = run_id.hex
        run_rows.append(
            (
                run_hex,
                now,
                now,
                flow_run[0],
                last.task_key,
                last.dynamic_key,
                last.task_version,
                text(last.task_inputs),
                last.flow_run_run_count,
                last.name,
                last.state_id.hex,
                last.state_type,
                last.state_name,
                stamp(last.timestamp),
                last.run_count,
                stamp(last.expected_start_time),
                stamp(last.next_scheduled_start_time),
                stamp(last.start_time),
                stamp(last.end_time),
                last.total_run_time,
                cached_json(last.tags),
                "{}",
                cached_json(last.empirical_policy),
            )
        )
        # What almost every state's details are: the run's and its flow run's ids.
        plain_details = f'{{"flow_run_id":{flow_run[1]},"task_run_id":"{run_id}"}}'
        state_rows[run_id] = [
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
    connection = await session.connection()
    inserted_hex: set[str] = set()
    for sql, params in _multi_row(
        "task_run", RUN_COLUMNS, run_rows, suffix=" ON CONFLICT DO NOTHING RETURNING id"
    ):
        result = await connection.exec_driver_sql(sql, params)
        inserted_hex.update(row[0] for row in result.all())
    inserted: set[uuid.UUID] = set()
    rows: list[tuple[Any, ...]] = []
    for run_id, states in state_rows.items():
        if states[0][3] in inserted_hex:
            inserted.add(run_id)
            rows.extend(states)
    for sql, params in _multi_row(
        "task_run_state", STATE_COLUMNS, rows, suffix=" ON CONFLICT (id) DO NOTHING"
    ):
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


def _multi_row(
    table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], suffix: str
) -> list[tuple[str, tuple[Any, ...]]]:
    """INSERT statements of many rows each, with their flat parameters.

    Statements have a full chunk of rows, or a power of two for the rest, so the
    driver's statement cache sees only a handful of distinct texts.
    """
    statements = []
    chunk = _SQLITE_CHUNK[columns]
    start = 0
    while start < len(rows):
        size = chunk
        left = len(rows) - start
        while size > left:
            size //= 2
        part = rows[start : start + size]
        statements.append((_insert_sql(table, columns, size, suffix), _flatten(part)))
        start += size
    return statements


_SQL_CACHE: dict[tuple[str, tuple[str, ...], int, str], str] = {}


def _insert_sql(table: str, columns: tuple[str, ...], rows: int, suffix: str) -> str:
    key = (table, columns, rows, suffix)
    sql = _SQL_CACHE.get(key)
    if sql is None:
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        names = ", ".join(f'"{c}"' for c in columns)
        sql = _SQL_CACHE[key] = (
            f'INSERT INTO "{table}" ({names}) VALUES ' + ", ".join([marks] * rows) + suffix
        )
    return sql


def _flatten(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    flat: list[Any] = []
    extend = flat.extend
    for row in rows:
        extend(row)
    return tuple(flat)


# --- other databases: SQLAlchemy Core -----------------------------------------------------------


async def _insert_generic(
    session: AsyncSession, dialect: str, runs: dict[uuid.UUID, list[TaskRunChange]]
) -> set[uuid.UUID]:
    now = now_utc()
    run_rows = []
    for run_id, group in runs.items():
        last = group[-1]
        run_rows.append(
            {
                "id": run_id,
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
        )
    stmt = (
        dialects.insert(dialect, _TASK_RUN)
        .on_conflict_do_nothing()
        .returning(_TASK_RUN.c.id)
        .execution_options(
            insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(RUN_COLUMNS))
        )
    )
    inserted = set((await session.execute(stmt, run_rows)).scalars().all())
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
        for run_id in inserted
        for change in runs[run_id]
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
