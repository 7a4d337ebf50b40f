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
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
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

# --- SQLite statements ----------------------------------------------------------------------
#
# Binding a value costs more than storing it: sqlite3 copies each string, and ``None``
# takes the driver's adapter lookup (~3,000 instructions a value). So the statements bind
# one value per row less wherever they can: the batch's time once for every row (``?1``),
# constants as literals, and a nullable value as ``0`` for NULL (``NULLIF(?, 0)``; these
# columns hold text, which never equals the integer 0).

#: A value bound for each row.
_VALUE = "?"
#: A nullable value bound for each row, ``0`` standing for NULL (see :func:`nullable`).
_NULLABLE = "NULLIF(?, 0)"
#: The batch's time, bound once.
_NOW = "?1"


def _columns(*specs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return specs


#: ``(column, what goes in it)`` of a new run's row; the bound ones in this order.
_RUN_ROW = _columns(
    ("created", _NOW),
    ("updated", _NOW),
    ("labels", "'{}'"),
    ("id", _VALUE),
    ("flow_run_id", _NULLABLE),
    ("task_key", _VALUE),
    ("dynamic_key", _VALUE),
    ("task_version", _NULLABLE),
    ("task_inputs", _VALUE),
    ("flow_run_run_count", _VALUE),
    ("name", _VALUE),
    ("state_id", _VALUE),
    ("state_type", _VALUE),
    ("state_name", _VALUE),
    ("state_timestamp", _VALUE),
    ("run_count", _VALUE),
    ("expected_start_time", _NULLABLE),
    ("next_scheduled_start_time", _NULLABLE),
    ("start_time", _NULLABLE),
    ("end_time", _NULLABLE),
    ("total_run_time", _VALUE),
    ("tags", _VALUE),
    ("empirical_policy", _VALUE),
)
#: ``(column, what goes in it)`` of a state's row.
_STATE_ROW = _columns(
    ("created", _NOW),
    ("updated", _NOW),
    ("data", "'null'"),
    ("id", _VALUE),
    ("task_run_id", _VALUE),
    ("type", _VALUE),
    ("name", _VALUE),
    ("timestamp", _VALUE),
    ("message", _NULLABLE),
    ("state_details", _VALUE),
)
#: ``(column, what goes in it)`` of a continued run's row, found by its id (bound first).
_UPDATE_ROW = _columns(
    ("updated", _NOW),
    ("state_id", _VALUE),
    ("state_type", _VALUE),
    ("state_name", _VALUE),
    ("state_timestamp", _VALUE),
    ("run_count", _VALUE),
    ("expected_start_time", _NULLABLE),
    ("next_scheduled_start_time", _NULLABLE),
    ("start_time", _NULLABLE),
    ("end_time", _NULLABLE),
    ("total_run_time", _VALUE),
)


def _bound(row: Sequence[tuple[str, str]]) -> int:
    return sum(1 for _, what in row if what in (_VALUE, _NULLABLE))


def _insert(table: str, row: Sequence[tuple[str, str]], tail: str) -> tuple[str, str]:
    """An INSERT's text around ``{values}``, and one row's VALUES entry."""
    names = ", ".join(f'"{column}"' for column, _ in row)
    return f'INSERT INTO "{table}" ({names}) {{values}} {tail}', "(" + ", ".join(
        w for _, w in row
    ) + ")"


def _update(row: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The bulk UPDATE's text around ``{values}`` (rows of the id, then each bound value),
    and one row's VALUES entry."""
    sets = []
    position = 2  # v.column1 is the id
    for column, what in row:
        if what in (_VALUE, _NULLABLE):
            source = f"v.column{position}"
            position += 1
            sets.append(
                f'"{column}" = ' + (f"NULLIF({source}, 0)" if what == _NULLABLE else source)
            )
        else:
            sets.append(f'"{column}" = {what}')
    text = (
        'UPDATE "task_run" SET '
        + ", ".join(sets)
        + ' FROM ({values}) AS v WHERE "task_run".id = v.column1'
    )
    return text, "(" + ", ".join(["?"] * (position - 1)) + ")"


_INSERT_RUNS = _insert("task_run", _RUN_ROW, "ON CONFLICT DO NOTHING")
#: Which of the runs named (a JSON list of ids) this batch inserted: they carry its time.
_INSERTED_RUNS = (
    'SELECT id FROM "task_run" WHERE created = ? AND id IN (SELECT value FROM json_each(?))'
)
_INSERT_STATES = _insert("task_run_state", _STATE_ROW, "ON CONFLICT (id) DO NOTHING")
_UPDATE_RUNS = _update(_UPDATE_ROW)
_RUN_WIDTH = _bound(_RUN_ROW)
_STATE_WIDTH = _bound(_STATE_ROW)
_UPDATE_WIDTH = 1 + _bound(_UPDATE_ROW)


def group_by_run(changes: Sequence[TaskRunChange]) -> dict[int, list[TaskRunChange]]:
    """The changes of each run, in the order they were made, keyed by the run id's
    integer (hashing an int is a C call; hashing a UUID is a Python one)."""
    runs: dict[int, list[TaskRunChange]] = {}
    get = runs.get
    for change in changes:
        key = change.id.int
        found = get(key)
        if found is None:
            runs[key] = [change]
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
    """What :func:`record_changes` did: the changes it left, and the runs it opened or
    closed (by their ids' integers)."""

    rest: list[TaskRunChange]
    opened: set[int] = field(default_factory=set)
    closed: set[int] = field(default_factory=set)

    def apply(self, open_runs: set[int]) -> None:
        """Update the caller's open runs (after the transaction committed)."""
        if self.closed:
            open_runs.difference_update(self.closed)
        if self.opened:
            open_runs.update(self.opened)


async def record_changes(
    session: AsyncSession, changes: Sequence[TaskRunChange], open_runs: set[int]
) -> Recorded:
    """Insert the new runs of ``changes`` and continue the open ones, with their states.

    Args:
        open_runs: the ids (``UUID.int``) of the runs this recorder inserted that have not
            finished (not modified here).

    Returns:
        The changes of the runs neither inserted nor continued (stored already, or their
        natural key is taken), in their original order, and the runs opened and closed.
    """
    runs = group_by_run(changes)
    if not runs:
        return Recorded([])
    if open_runs:
        new = {key: group for key, group in runs.items() if key not in open_runs}
        continuing = {key: group for key, group in runs.items() if key in open_runs}
    else:
        new, continuing = runs, {}
    dialect = dialects.dialect_name(session)
    if dialect == "sqlite":
        inserted = await _record_sqlite(session, new, continuing)
    else:
        inserted = await _record_generic(session, dialect, new, continuing)
    if len(inserted) + len(continuing) == len(runs):  # the usual case: nothing left over
        recorded = Recorded([])
    else:
        recorded = Recorded(
            [c for c in changes if c.id.int not in inserted and c.id.int not in continuing]
        )
    terminal = _TERMINAL
    recorded.opened = {key for key in inserted if runs[key][-1].state_type not in terminal}
    recorded.closed = {key for key, group in continuing.items() if group[-1].state_type in terminal}
    return recorded


# --- SQLite: values as stored, bound to the driver --------------------------------------------


async def _record_sqlite(
    session: AsyncSession,
    new: dict[int, list[TaskRunChange]],
    continuing: dict[int, list[TaskRunChange]],
) -> set[int]:
    """Insert ``new`` runs and update ``continuing`` ones, with their states; returns the
    runs inserted.

    The values are laid out flat, row after row, as the statements bind them, and run on
    the session's own sqlite3 connection (inside its transaction), without SQLAlchemy's
    per-statement machinery: this is the embedded engine's hot path, a few microseconds
    of Python per task run, so it is written for speed (locals, no helper objects).
    """
    now = dialects.sqlite_datetime(now_utc())
    utc = _UTC
    text = dialects.json_text
    # Stored text of each timestamp met, by the datetime's identity: a run's bookkeeping
    # holds the very objects its states were stamped with (the changes keep them alive).
    stamps: dict[int, str] = {}
    json_cache: dict[int, str] = {}
    flow_runs: dict[uuid.UUID | None, tuple[str | int, str]] = {None: (0, "null")}

    def stamp(value: dt.datetime | None) -> str | int:
        """``value`` as stored, or ``0`` for ``None`` (bound as ``NULLIF(?, 0)``)."""
        if value is None:
            return 0
        found = stamps.get(id(value))
        if found is None:
            found = stamps[id(value)] = (
                _utc_text(value) if value.tzinfo is utc else dialects.sqlite_datetime(value) or ""
            )
        return found

    def cached_json(value: Any) -> str:
        # The policy and tags of one task are the very same objects in each of its runs.
        found = json_cache.get(id(value))
        if found is None:
            found = json_cache[id(value)] = text(value)
        return found

    def add_states(out: list[Any], key: int, run_hex: str, group: list[TaskRunChange]) -> str:
        """Append the rows of a run's states to ``out``; returns the latest state's id."""
        last = group[-1]
        flow_run = flow_runs.get(last.flow_run_id)
        if flow_run is None:
            flow_run_id = last.flow_run_id
            assert flow_run_id is not None
            flow_run = flow_runs[flow_run_id] = (flow_run_id.hex, f'"{flow_run_id}"')
        # What almost every state's details are: the run's and its flow run's ids.
        plain_details = (
            f'{{"flow_run_id":{flow_run[1]},"task_run_id":"{run_hex[:8]}-{run_hex[8:12]}-'
            f'{run_hex[12:16]}-{run_hex[16:20]}-{run_hex[20:]}"}}'
        )
        state_hex = ""
        for change in group:
            ts = change.timestamp
            if ts.tzinfo is utc:  # _utc_text, inline
                stamped = ts.isoformat(" ")
                stamped = stamps[id(ts)] = (
                    stamped[:-6] if len(stamped) == 32 else stamped[:19] + ".000000"
                )
            else:
                stamped = stamp(ts)  # type: ignore[assignment]
            message = change.message
            state_hex = f"{change.state_id.int:032x}"
            out += (
                state_hex,
                run_hex,
                change.state_type,
                change.state_name,
                stamped,
                0 if message is None else message,
                text(_details(change)) if change.details else plain_details,
            )
        return state_hex

    run_values: list[Any] = []
    new_states: list[tuple[str, list[Any]]] = []
    for key, group in new.items():
        last = group[-1]
        run_hex = f"{key:032x}"
        states: list[Any] = []
        new_states.append((run_hex, states))
        state_hex = add_states(states, key, run_hex, group)
        version = last.task_version
        run_values += (
            run_hex,
            flow_runs[last.flow_run_id][0],
            last.task_key,
            last.dynamic_key,
            0 if version is None else version,
            text(last.task_inputs),
            last.flow_run_run_count,
            last.name,
            state_hex,
            last.state_type,
            last.state_name,
            stamps[id(last.timestamp)],
            last.run_count,
            stamp(last.expected_start_time),
            stamp(last.next_scheduled_start_time),
            stamp(last.start_time),
            stamp(last.end_time),
            last.total_run_time,
            cached_json(last.tags),
            cached_json(last.empirical_policy),
        )
    update_values: list[Any] = []
    state_values: list[Any] = []
    for key, group in continuing.items():
        last = group[-1]
        run_hex = f"{key:032x}"
        state_hex = add_states(state_values, key, run_hex, group)
        update_values += (
            run_hex,
            state_hex,
            last.state_type,
            last.state_name,
            stamps[id(last.timestamp)],
            last.run_count,
            stamp(last.expected_start_time),
            stamp(last.next_scheduled_start_time),
            stamp(last.start_time),
            stamp(last.end_time),
            last.total_run_time,
        )

    cursor = (await _sqlite3_connection(session)).cursor()
    try:
        count = 0
        for sql, params in _statements(_INSERT_RUNS, _RUN_WIDTH, now, run_values):
            count += cursor.execute(sql, params).rowcount
        for sql, params in _statements(_UPDATE_RUNS, _UPDATE_WIDTH, now, update_values):
            cursor.execute(sql, params)
        if count == len(new):  # the usual case (RETURNING would cost a step per row)
            inserted = set(new)
            for _, states in new_states:
                state_values += states
        else:  # some natural key was taken, or a run was stored already
            ids = orjson.dumps([run_hex for run_hex, _ in new_states]).decode()
            inserted_hex = {row[0] for row in cursor.execute(_INSERTED_RUNS, (now, ids))}
            inserted = set()
            for key, (run_hex, states) in zip(new, new_states, strict=True):
                if run_hex in inserted_hex:
                    inserted.add(key)
                    state_values += states
        for sql, params in _statements(_INSERT_STATES, _STATE_WIDTH, now, state_values):
            cursor.execute(sql, params)
    except sqlite3.IntegrityError as exc:  # as SQLAlchemy would raise it (a flow run is gone)
        raise sa.exc.IntegrityError(None, None, exc) from exc
    finally:
        cursor.close()
    return inserted


def _utc_text(value: dt.datetime) -> str:
    """An aware UTC datetime as SQLite stores it ("2026-01-02 03:04:05.000006").

    Plain ``isoformat(" ")`` and a slice: asking for ``timespec="microseconds"`` doubles
    the cost (~0.8 µs a call); the only other length it gives is a whole second's.
    """
    text = value.isoformat(" ")
    return text[:-6] if len(text) == 32 else text[:19] + ".000000"


async def _sqlite3_connection(session: AsyncSession) -> Any:
    """The ``sqlite3.Connection`` under ``session``'s connection (its transaction begun)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection._open()  # type: ignore[union-attr]


def _statements(
    template: tuple[str, str], width: int, now: Any, values: list[Any]
) -> list[tuple[str, list[Any]]]:
    """``template`` (statement text, one row's VALUES entry) over ``values`` (rows of
    ``width`` values, laid out flat), a statement and its parameters (``now`` first) at a
    time.

    Statements have ``_SQLITE_ROWS`` rows, or a power of two for the rest, so the
    driver's statement cache sees only a handful of distinct texts.
    """
    statements = []
    rows = len(values) // width
    start = 0
    while start < rows:
        size = _SQLITE_ROWS
        left = rows - start
        while size > left:
            size //= 2
        params = [now]
        params += values[start * width : (start + size) * width]
        statements.append((_sql(template, size), params))
        start += size
    return statements


@functools.lru_cache(maxsize=64)
def _sql(template: tuple[str, str], rows: int) -> str:
    text, row = template
    return text.format(values="VALUES " + ", ".join([row] * rows))


# --- other databases: SQLAlchemy Core -----------------------------------------------------------


async def _record_generic(
    session: AsyncSession,
    dialect: str,
    new: dict[int, list[TaskRunChange]],
    continuing: dict[int, list[TaskRunChange]],
) -> set[int]:
    now = now_utc()
    inserted: set[int] = set()
    if new:
        run_rows = [{"id": group[-1].id, **_run_values(group[-1], now)} for group in new.values()]
        stmt = (
            dialects.insert(dialect, _TASK_RUN)
            .on_conflict_do_nothing()
            .returning(_TASK_RUN.c.id)
            .execution_options(
                insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(RUN_COLUMNS))
            )
        )
        inserted = {rid.int for rid in (await session.execute(stmt, run_rows)).scalars().all()}
    if continuing:
        columns = UPDATE_COLUMNS
        update = (
            sa.update(_TASK_RUN)
            .where(_TASK_RUN.c.id == sa.bindparam("b_id"))
            .values({c: sa.bindparam(f"v_{c}", type_=_TASK_RUN.c[c].type) for c in columns})
        )
        params = []
        for group in continuing.values():
            values = _run_values(group[-1], now)
            params.append({"b_id": group[-1].id, **{f"v_{c}": values[c] for c in columns}})
        await session.execute(update, params)
    state_rows = [
        {
            "id": change.state_id,
            "created": now,
            "updated": now,
            "task_run_id": change.id,
            "type": change.state_type,
            "name": change.state_name,
            "timestamp": change.timestamp,
            "message": change.message,
            "state_details": _details(change)
            if change.details
            else {
                "flow_run_id": change.flow_run_id and str(change.flow_run_id),
                "task_run_id": str(change.id),
            },
            "data": None,
        }
        for group in [*(new[key] for key in inserted), *continuing.values()]
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
