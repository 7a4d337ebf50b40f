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
import operator
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.schemas.base import now_utc
from flowplane.schemas.task_run_changes import TaskRunChange
from flowplane.server.db import dialects

_UTC = dt.timezone.utc

#: Rows per multi-row statement, at most: a 512-row INSERT took 3.5 ms to prepare, paid
#: again by every new process; 64 rows take 0.2 ms.
_SQLITE_ROWS = 64

# --- statements -------------------------------------------------------------------------------
#
# Binding a value costs more than storing it: sqlite3 copies each string, and ``None``
# takes the driver's adapter lookup (~3,000 instructions a value). So the statements bind
# as few values as they can: the batch's time once for every row (``?1``), constants as
# literals, a nullable value as ``0`` for NULL (``NULLIF(?, 0)``; these columns hold text,
# which never equals the integer 0), and a value that several columns or rows of one run
# hold once (numbered parameters).
#
# Most task runs go Pending -> Running -> Completed in one batch, with no message and no
# details of their own: such a *plain* run is written with its three states as one group
# (:data:`_INSERT_PLAIN_RUNS`, :data:`_INSERT_PLAIN_STATES`), its types and names as
# literals and its timestamps bound once each: 23 values bound for the run and its states,
# where the general statements bind 41.


class _Bound(NamedTuple):
    """A value bound for each group of rows. Columns and rows of a group that name the same
    slot share one value; the slot is named after its column unless given."""

    slot: str = ""
    nullable: bool = False  # bound as ``0`` for NULL


#: A value bound for each row, in a slot named after its column.
_VALUE = _Bound()
#: The same, nullable.
_NULLABLE = _Bound(nullable=True)
#: The batch's time, bound once per statement.
_NOW = "?1"

#: ``(column, what goes in it)``: a bound value, or SQL (a literal, ``?1``).
_Row = tuple[tuple[str, "_Bound | str"], ...]


def _columns(*specs: tuple[str, _Bound | str]) -> _Row:
    return specs


def _with(row: _Row, **what: _Bound | str) -> _Row:
    """``row`` with some columns' contents replaced."""
    return tuple((column, what.get(column, was)) for column, was in row)


#: A run's current state and bookkeeping, as of its latest change.
_BOOKKEEPING = _columns(
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
#: A new run's row.
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
    *_BOOKKEEPING,
    ("tags", _VALUE),
    ("empirical_policy", _VALUE),
)
#: A state's row.
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
#: A continued run's row, found by its id (bound first).
_UPDATE_ROW = _columns(("updated", _NOW), *_BOOKKEEPING)
#: A plain run's row: Completed at its Completed state's time, started when it ran,
#: expected when it was Pending, run once.
_PLAIN_RUN_ROW = _with(
    _RUN_ROW,
    state_type="'COMPLETED'",
    state_name="'Completed'",
    state_timestamp=_Bound("completed"),
    run_count="1",
    expected_start_time=_Bound("pending"),
    next_scheduled_start_time="NULL",
    start_time=_Bound("running"),
    end_time=_Bound("completed"),
)


def _plain_state(type_: str, name: str, slot: str) -> _Row:
    """One of a plain run's states; the group's rows share its run id and details."""
    return _with(
        _STATE_ROW,
        id=_Bound(f"{slot}_id"),
        type=f"'{type_}'",
        name=f"'{name}'",
        timestamp=_Bound(slot),
        message="NULL",
    )


class _Shape(NamedTuple):
    """A multi-row statement: its text around ``{values}``, one group's VALUES rows with its
    bound values written ``{0}``, ``{1}``, ..., and the slots of those values, in the order
    a group's values are laid out."""

    text: str
    rows: tuple[str, ...]
    slots: tuple[str, ...]


def _group(rows: Sequence[_Row]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The VALUES rows of one group, and its slots in order of first use."""
    slots: dict[str, int] = {}
    texts = []
    for row in rows:
        parts = []
        for column, what in row:
            if isinstance(what, _Bound):
                ref = "{" + str(slots.setdefault(what.slot or column, len(slots))) + "}"
                parts.append(f"NULLIF({ref}, 0)" if what.nullable else ref)
            else:
                parts.append(what.replace("{", "{{").replace("}", "}}"))
        texts.append("(" + ", ".join(parts) + ")")
    return tuple(texts), tuple(slots)


def _insert(table: str, rows: Sequence[_Row], tail: str) -> _Shape:
    names = ", ".join(f'"{column}"' for column, _ in rows[0])
    assert all([c for c, _ in row] == [c for c, _ in rows[0]] for row in rows)
    texts, slots = _group(rows)
    return _Shape(f'INSERT INTO "{table}" ({names}) {{values}} {tail}', texts, slots)


def _update(row: _Row) -> _Shape:
    """The bulk UPDATE of runs by id, from VALUES rows of the id and each bound value (as
    bound: ``NULLIF`` is applied in the SET)."""
    bound = [(column, _Bound(what.slot)) for column, what in row if isinstance(what, _Bound)]
    texts, slots = _group([(("id", _VALUE), *bound)])
    sets = []
    for column, what in row:
        if isinstance(what, _Bound):
            source = f"v.column{slots.index(what.slot or column) + 1}"
            sets.append(f'"{column}" = ' + (f"NULLIF({source}, 0)" if what.nullable else source))
        else:
            sets.append(f'"{column}" = {what}')
    text = (
        'UPDATE "task_run" SET '
        + ", ".join(sets)
        + ' FROM ({values}) AS v WHERE "task_run".id = v.column1'
    )
    return _Shape(text, texts, slots)


_INSERT_RUNS = _insert("task_run", [_RUN_ROW], "ON CONFLICT DO NOTHING")
_INSERT_STATES = _insert("task_run_state", [_STATE_ROW], "ON CONFLICT (id) DO NOTHING")
_UPDATE_RUNS = _update(_UPDATE_ROW)
_INSERT_PLAIN_RUNS = _insert("task_run", [_PLAIN_RUN_ROW], "ON CONFLICT DO NOTHING")
_INSERT_PLAIN_STATES = _insert(
    "task_run_state",
    [
        _plain_state("PENDING", "Pending", "pending"),
        _plain_state("RUNNING", "Running", "running"),
        _plain_state("COMPLETED", "Completed", "completed"),
    ],
    "ON CONFLICT (id) DO NOTHING",
)
#: Which of the runs named (a JSON list of ids) this batch inserted: they carry its time.
_INSERTED_RUNS = (
    'SELECT id FROM "task_run" WHERE created = ? AND id IN (SELECT value FROM json_each(?))'
)

#: A change's (state type, state name, message, details); a plain run's are these.
_STATE_OF = operator.itemgetter(
    *(TaskRunChange._fields.index(f) for f in ("state_type", "state_name", "message", "details"))
)
_PLAIN = (
    ("PENDING", "Pending", None, None),
    ("RUNNING", "Running", None, None),
    ("COMPLETED", "Completed", None, None),
)


# --- recording ---------------------------------------------------------------------------------


async def record_sqlite(
    session: AsyncSession,
    new: dict[int, list[TaskRunChange]],
    continuing: dict[int, list[TaskRunChange]],
) -> set[int]:
    """Insert ``new`` runs and update ``continuing`` ones, with their states; returns the
    runs inserted.

    Each statement's values are laid out flat, group after group, in its shape's slot
    order; this is the embedded engine's hot path, so it is written for speed (locals, no
    helper objects).
    """
    now = dialects.sqlite_datetime(now_utc())
    text = dialects.json_text
    utc_text = _utc_texts()
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
            found = stamps[id(value)] = utc_text(value)
        return found

    def cached_json(value: Any) -> str:
        # The policy and tags of one task are the very same objects in each of its runs.
        found = json_cache.get(id(value))
        if found is None:
            found = json_cache[id(value)] = text(value)
        return found

    def flow_run_of(change: TaskRunChange) -> tuple[str | int, str]:
        """The flow run's id as stored (``0``: none) and as a JSON string."""
        found = flow_runs.get(change.flow_run_id)
        if found is None:
            flow_run_id = change.flow_run_id
            assert flow_run_id is not None
            found = flow_runs[flow_run_id] = (flow_run_id.hex, f'"{flow_run_id}"')
        return found

    def plain_details(flow_run: tuple[str | int, str], run_hex: str) -> str:
        """What almost every state's details are: the run's and its flow run's ids."""
        return (
            f'{{"flow_run_id":{flow_run[1]},"task_run_id":"{run_hex[:8]}-{run_hex[8:12]}-'
            f'{run_hex[12:16]}-{run_hex[16:20]}-{run_hex[20:]}"}}'
        )

    def add_states(out: list[Any], run_hex: str, group: list[TaskRunChange]) -> str:
        """Append the rows of a run's states to ``out``; returns the latest state's id."""
        details = plain_details(flow_run_of(group[-1]), run_hex)
        state_hex = ""
        for change in group:
            message = change.message
            state_hex = f"{change.state_id:032x}"
            out += (
                state_hex,
                run_hex,
                change.state_type,
                change.state_name,
                stamp(change.timestamp),
                0 if message is None else message,
                text(change.stored_details()) if change.details else details,
            )
        return state_hex

    def bookkeeping(state_hex: str, last: TaskRunChange) -> tuple[Any, ...]:
        """The values of :data:`_BOOKKEEPING`: the run as of its latest change."""
        return (
            state_hex,
            last.state_type,
            last.state_name,
            stamp(last.timestamp),
            last.run_count,
            stamp(last.expected_start_time),
            stamp(last.next_scheduled_start_time),
            stamp(last.start_time),
            stamp(last.end_time),
            last.total_run_time,
        )

    state_of, plain = _STATE_OF, _PLAIN
    run_values: list[Any] = []
    plain_run_values: list[Any] = []
    # (run, its state values, whether they are a plain run's group)
    new_states: list[tuple[str, Any, bool]] = []
    for key, group in new.items():
        last = group[-1]
        run_hex = f"{key:032x}"
        version = last.task_version
        if (
            len(group) == 3
            and (state_of(group[0]), state_of(group[1]), state_of(last)) == plain
            and last.run_count == 1
            and last.expected_start_time is group[0].timestamp
            and last.start_time is group[1].timestamp
            and last.end_time is last.timestamp
            and last.next_scheduled_start_time is None
        ):
            flow_run = flow_run_of(last)
            completed_hex = f"{last.state_id:032x}"
            pending = utc_text(last.expected_start_time)
            running = utc_text(last.start_time)
            completed = utc_text(last.timestamp)
            new_states.append(
                (
                    run_hex,
                    (
                        f"{group[0].state_id:032x}",
                        run_hex,
                        pending,
                        plain_details(flow_run, run_hex),
                        f"{group[1].state_id:032x}",
                        running,
                        completed_hex,
                        completed,
                    ),
                    True,
                )
            )
            plain_run_values += (
                run_hex,
                flow_run[0],
                last.task_key,
                last.dynamic_key,
                0 if version is None else version,
                text(last.task_inputs),
                last.flow_run_run_count,
                last.name,
                completed_hex,
                completed,
                pending,
                running,
                last.total_run_time,
                cached_json(last.tags),
                cached_json(last.empirical_policy),
            )
            continue
        states: list[Any] = []
        new_states.append((run_hex, states, False))
        state_hex = add_states(states, run_hex, group)
        run_values += (
            run_hex,
            flow_runs[last.flow_run_id][0],
            last.task_key,
            last.dynamic_key,
            0 if version is None else version,
            text(last.task_inputs),
            last.flow_run_run_count,
            last.name,
            *bookkeeping(state_hex, last),
            cached_json(last.tags),
            cached_json(last.empirical_policy),
        )
    update_values: list[Any] = []
    state_values: list[Any] = []
    plain_state_values: list[Any] = []
    for key, group in continuing.items():
        last = group[-1]
        run_hex = f"{key:032x}"
        state_hex = add_states(state_values, run_hex, group)
        update_values += (run_hex, *bookkeeping(state_hex, last))

    cursor = (await _sqlite3_connection(session)).cursor()
    try:
        count = 0
        for sql, params in _statements(_INSERT_RUNS, now, run_values):
            count += cursor.execute(sql, params).rowcount
        for sql, params in _statements(_INSERT_PLAIN_RUNS, now, plain_run_values):
            count += cursor.execute(sql, params).rowcount
        for sql, params in _statements(_UPDATE_RUNS, now, update_values):
            cursor.execute(sql, params)
        if count == len(new):  # the usual case (RETURNING would cost a step per row)
            inserted = set(new)
            written = new_states
        else:  # some natural key was taken, or a run was stored already
            ids = orjson.dumps([run_hex for run_hex, _, _ in new_states]).decode()
            inserted_hex = {row[0] for row in cursor.execute(_INSERTED_RUNS, (now, ids))}
            inserted = {
                key
                for key, (run_hex, _, _) in zip(new, new_states, strict=True)
                if run_hex in inserted_hex
            }
            written = [entry for entry in new_states if entry[0] in inserted_hex]
        for _, values, is_plain in written:
            if is_plain:
                plain_state_values += values
            else:
                state_values += values
        for sql, params in _statements(_INSERT_STATES, now, state_values):
            cursor.execute(sql, params)
        for sql, params in _statements(_INSERT_PLAIN_STATES, now, plain_state_values):
            cursor.execute(sql, params)
    except sqlite3.IntegrityError as exc:  # as SQLAlchemy would raise it (a flow run is gone)
        raise sa.exc.IntegrityError(None, None, exc) from exc
    finally:
        cursor.close()
    return inserted


def _utc_texts() -> Callable[[dt.datetime], str]:
    """A function giving a datetime as SQLite stores it ("2026-01-02 03:04:05.000006"),
    which remembers the text of each whole second it formatted.

    ``isoformat`` of an aware datetime costs ~0.7 µs (its offset is looked up and
    formatted); the second's text from a dict and the microseconds appended cost half.
    """
    seconds: dict[tuple[int, ...], str] = {}
    utc = _UTC
    sqlite_datetime = dialects.sqlite_datetime

    def utc_text(value: dt.datetime) -> str:
        if value.tzinfo is not utc:
            return sqlite_datetime(value) or ""
        second = (value.year, value.month, value.day, value.hour, value.minute, value.second)
        prefix = seconds.get(second)
        if prefix is None:
            prefix = seconds[second] = value.isoformat(" ")[:19]
        return f"{prefix}.{value.microsecond:06d}"

    return utc_text


async def _sqlite3_connection(session: AsyncSession) -> Any:
    """The ``sqlite3.Connection`` under ``session``'s connection (its transaction begun)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection._open()  # type: ignore[union-attr]


def _statements(shape: _Shape, now: Any, values: list[Any]) -> list[tuple[str, list[Any]]]:
    """``shape`` over ``values`` (groups of ``len(shape.slots)`` values, laid out flat), a
    statement and its parameters (``now`` first) at a time.

    Statements have up to ``_SQLITE_ROWS`` rows, in as many groups as fit, then halving
    for the rest, so the driver's statement cache sees only a handful of distinct texts.
    """
    statements = []
    width = len(shape.slots)
    groups = len(values) // width
    most = max(1, _SQLITE_ROWS // len(shape.rows))
    start = 0
    while start < groups:
        size = most
        left = groups - start
        while size > left:
            size //= 2
        params = [now]
        params += values[start * width : (start + size) * width]
        statements.append((_sql(shape, size), params))
        start += size
    return statements


@functools.lru_cache(maxsize=64)
def _sql(shape: _Shape, groups: int) -> str:
    """``shape``'s statement for ``groups`` groups, its values numbered from ``?2``."""
    width = len(shape.slots)
    rows = []
    for group in range(groups):
        numbered = [f"?{2 + group * width + slot}" for slot in range(width)]
        rows += [row.format(*numbered) for row in shape.rows]
    return shape.text.format(values="VALUES " + ", ".join(rows))
