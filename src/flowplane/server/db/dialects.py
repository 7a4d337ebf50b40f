"""The only place that branches on the database dialect: JSON array tests and upserts."""

from __future__ import annotations

from typing import Any

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
