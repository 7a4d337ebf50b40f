"""The only place that branches on the database dialect: JSON array tests, upserts, bulk rows.

Bulk rows on SQLite skip SQLAlchemy's per-value bind processing: the values are turned
into exactly what SQLAlchemy would store (see :func:`sqlite_value`) and handed to the
driver's ``executemany`` in one call, which is several times cheaper per row.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement


def _sqlite_json_values(column: Any) -> Any:
    return sa.func.json_each(column).table_valued("value").alias("je")


def json_array_has_all(dialect: str, column: Any, values: list[str]) -> ColumnElement[bool]:
    """The JSON array ``column`` holds every one of ``values``."""
    if not values:
        return sa.true()
    if dialect == "postgresql":
        return column.op("@>")(sa.literal(values, type_=postgresql.JSONB))
    clauses = []
    for value in values:
        je = _sqlite_json_values(column)
        clauses.append(
            sa.exists(sa.select(sa.literal(1)).select_from(je).where(je.c.value == value))
        )
    return sa.and_(*clauses)


def json_array_has_any(dialect: str, column: Any, values: list[str]) -> ColumnElement[bool]:
    """The JSON array ``column`` holds at least one of ``values``."""
    if not values:
        return sa.false()
    if dialect == "postgresql":
        return column.op("?|")(sa.cast(values, postgresql.ARRAY(sa.String)))
    je = _sqlite_json_values(column)
    return sa.exists(sa.select(sa.literal(1)).select_from(je).where(je.c.value.in_(values)))


def json_array_is_empty(dialect: str, column: Any) -> ColumnElement[bool]:
    """The JSON array ``column`` is empty (or null)."""
    if dialect == "postgresql":
        return sa.or_(column.is_(None), sa.func.jsonb_array_length(column) == 0)
    return sa.or_(column.is_(None), sa.func.json_array_length(column) == 0)


def json_array_elements(dialect: str, column: Any) -> Any:
    """The text elements of the JSON array ``column``, as a table with one column ``value``
    (correlated to ``column``'s table when used inside an EXISTS)."""
    if dialect == "postgresql":
        return (
            sa.func.jsonb_array_elements_text(column).table_valued("value").render_derived()
        ).alias("elements")
    return _sqlite_json_values(column)


def uuid_text(dialect: str, column: Any) -> ColumnElement[str]:
    """A ``Uuid`` column as its canonical text (lowercase, hyphenated), as ``str(uuid)`` gives."""
    if dialect == "postgresql":
        return sa.cast(column, sa.Text)
    text = sa.type_coerce(column, sa.Text)  # SQLite stores the 32 hex digits
    parts = [sa.func.substr(text, start, size) for start, size in _UUID_PARTS]
    joined: ColumnElement[str] = parts[0]
    for part in parts[1:]:
        joined = joined + "-" + part
    return sa.type_coerce(joined, sa.Text)


_UUID_PARTS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


def json_field_text(dialect: str, column: Any, key: str) -> ColumnElement[Any]:
    """The text of ``column[key]`` for a JSON object column."""
    if dialect == "postgresql":
        return column.op("->>")(key)
    return sa.func.json_extract(column, f"$.{key}")


def insert(dialect: str, table: Any) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing``/``on_conflict_do_update``."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def dialect_name(session: Any) -> str:
    """The dialect name ("sqlite", "postgresql") of an AsyncSession's bind."""
    return session.get_bind().dialect.name


def rowcount(result: Any) -> int:
    """Rows affected by an INSERT/UPDATE/DELETE result."""
    return int(result.rowcount)


def json_key_text(dialect: str, column: Any, key: str) -> ColumnElement[Any]:
    """The text of ``column[key]`` for a JSON object column, for any key (dots included)."""
    if dialect == "postgresql":
        return column.op("->>", return_type=sa.Text)(sa.literal(key, type_=sa.Text))
    quoted = key.replace('"', '\\"')
    return sa.func.json_extract(column, f'$."{quoted}"', type_=sa.Text)


def epoch_seconds(dialect: str, column: Any) -> ColumnElement[Any]:
    """Seconds since the Unix epoch of a ``Timestamp`` column, as a float."""
    if dialect == "postgresql":
        return sa.extract("epoch", column)
    # SQLite stores the naive UTC text; julianday() reads it with its microseconds.
    return (sa.func.julianday(column) - 2440587.5) * 86400.0


def floor(dialect: str, expr: Any) -> ColumnElement[Any]:
    """The integer floor of ``expr`` (SQLite may lack a floor() function)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(expr), sa.BigInteger)
    truncated = sa.cast(expr, sa.Integer)
    return sa.case((sa.and_(expr < 0, expr != truncated), truncated - 1), else_=truncated)


def max_bind_params(dialect: str) -> int:
    """How many bound parameters one statement may carry."""
    if dialect == "postgresql":
        return 32_000  # asyncpg's limit is 32767
    import sqlite3

    return 32_000 if sqlite3.sqlite_version_info >= (3, 32) else 999


def rows_per_statement(dialect: str, columns: int) -> int:
    """How many rows of ``columns`` values fit in one multi-row INSERT."""
    return max(1, max_bind_params(dialect) // max(columns, 1))


# --- bulk rows on SQLite ------------------------------------------------------------------

_UTC = dt.timezone.utc


def json_text(value: Any) -> str:
    """A JSON column's stored text, as the engine's serializer writes it (``None`` is ``null``)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def sqlite_datetime(value: dt.datetime | None) -> str | None:
    """A ``Timestamp`` as SQLite stores it: naive UTC text with microseconds."""
    if value is None:
        return None
    offset = value.utcoffset()
    if offset is not None:
        if offset:
            value = value - offset
        value = value.replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def sqlite_uuid(value: uuid.UUID | None) -> str | None:
    """A ``Uuid`` as SQLite stores it: 32 hex digits."""
    return None if value is None else value.hex


def _sqlite_converter(column: sa.Column[Any]) -> Callable[[Any], Any] | None:
    """How a Python value of ``column`` becomes its stored SQLite value (``None``: as it is)."""
    type_ = column.type
    if isinstance(type_, sa.JSON):
        return json_text  # a None is stored as JSON null, as sa.JSON(none_as_null=False) does
    if isinstance(type_, sa.Uuid):
        return sqlite_uuid
    if isinstance(type_, sa.types.TypeDecorator) and isinstance(type_.impl, sa.DateTime):
        return sqlite_datetime
    if isinstance(type_, sa.DateTime):
        return sqlite_datetime
    if isinstance(type_, (sa.String, sa.Integer, sa.Float, sa.Boolean)):
        return None
    raise TypeError(f"no bulk SQLite conversion for {column.table.name}.{column.name} ({type_})")


@functools.lru_cache(maxsize=64)
def _sqlite_plan(
    table: sa.Table, columns: tuple[str, ...], keys: tuple[str, ...], verb: str
) -> tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]:
    quoted = [f'"{name}"' for name in columns]
    if verb == "update":
        converters = tuple((name, _sqlite_converter(table.c[name])) for name in columns + keys)
        sets = ", ".join(f"{q} = ?" for q in quoted)
        where = " AND ".join(f'"{k}" = ?' for k in keys)
        return f'UPDATE "{table.name}" SET {sets} WHERE {where}', converters
    converters = tuple((name, _sqlite_converter(table.c[name])) for name in columns)
    marks = ", ".join("?" * len(columns))
    sql = f'INSERT INTO "{table.name}" ({", ".join(quoted)}) VALUES ({marks})'
    if keys:
        conflict = ", ".join(f'"{k}"' for k in keys)
        sql += f" ON CONFLICT ({conflict}) DO NOTHING"
    return sql, converters


def sqlite_values(
    converters: Sequence[tuple[str, Callable[[Any], Any] | None]], row: Mapping[str, Any]
) -> tuple[Any, ...]:
    return tuple(
        [row[name] if convert is None else convert(row[name]) for name, convert in converters]
    )


async def sqlite_insert_many(
    session: Any,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    do_nothing_on: tuple[str, ...] = (),
) -> None:
    """INSERT ``rows`` (dicts with the same keys, Python values) with one driver ``executemany``.

    Args:
        session: an AsyncSession on SQLite, inside its transaction.
        table: the table.
        rows: the rows; every row has the keys of the first.
        do_nothing_on: skip rows that clash with a stored one on these (unique) columns.
    """
    if not rows:
        return
    sql, converters = _sqlite_plan(table, tuple(rows[0]), do_nothing_on, "insert")
    await sqlite_execute_many(session, sql, [sqlite_values(converters, row) for row in rows])


async def sqlite_update_many(
    session: Any, table: sa.Table, rows: Sequence[Mapping[str, Any]], key: str = "id"
) -> None:
    """UPDATE each row of ``table`` whose ``key`` is ``row[key]`` with the row's other values."""
    if not rows:
        return
    columns = tuple(name for name in rows[0] if name != key)
    sql, converters = _sqlite_plan(table, columns, (key,), "update")
    await sqlite_execute_many(session, sql, [sqlite_values(converters, row) for row in rows])


async def sqlite_execute_many(session: Any, sql: str, params: Sequence[tuple[Any, ...]]) -> None:
    """Run ``sql`` once per parameter tuple in one driver call (SQLite qmark style)."""
    if params:
        connection = await session.connection()
        await connection.exec_driver_sql(sql, list(params))


async def sqlite_existing(
    session: Any, table: sa.Table, column: str, values: Iterable[str]
) -> set[Any]:
    """The stored values of ``column`` among ``values`` (already in their SQLite form)."""
    wanted = list(values)
    found: set[Any] = set()
    connection = await session.connection()
    size = max(1, max_bind_params("sqlite") - 1)
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        marks = ", ".join("?" * len(chunk))
        result = await connection.exec_driver_sql(
            f'SELECT "{column}" FROM "{table.name}" WHERE "{column}" IN ({marks})', tuple(chunk)
        )
        found.update(row[0] for row in result.all())
    return found
