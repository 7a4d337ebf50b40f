"""Recording task runs from plain state changes on SQLite: the rows bound straight to the driver, many per statement.

This is the embedded engine's hot path (a few microseconds of Python per task run),
so it is written for speed: values laid out flat, row after row, as the statements
bind them, run on the session's own sqlite3 connection inside its transaction, without
SQLAlchemy's per-statement machinery. Each statement runs in SQLite with Python's lock
released. What is stored is exactly what :mod:`flowplane.server.store.task_run_changes`
stores on other databases (tests compare the rows field by field).
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.schemas.base import now_utc
from flowplane.schemas.task_run_changes import TaskRunChange
from flowplane.server.db import dialects

_UTC = dt.timezone.utc

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


# --- recording ---------------------------------------------------------------------------------


async def record_sqlite(
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
                text(change.stored_details()) if change.details else plain_details,
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
