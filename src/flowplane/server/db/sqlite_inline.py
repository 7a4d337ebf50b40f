"""An aiosqlite-shaped connection that runs sqlite3 calls inline on the event loop, with no worker thread.

aiosqlite hands every statement to a thread and back, which costs ~0.2 ms a hop and
made a one-row write transaction 18x slower than sqlite3 itself. SQLite statements
on a local file take microseconds, so running them inline is cheaper than any hop.
Callers must not hold a write transaction open across a real suspension while
another coroutine of the same process tries to write: ``Database.session`` takes
an asyncio lock around SQLite write transactions for exactly that reason.

SQLAlchemy's aiosqlite dialect uses this through ``create_async_engine(...,
async_creator=...)``; its error classes are sqlite3's, which aiosqlite re-exports.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable
from typing import Any


class Cursor:
    """A sqlite3 cursor behind awaitable methods that complete without suspending."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size) if size is not None else self._cursor.fetchmany()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _CursorOpener:
    """What ``Connection.cursor()`` returns: usable as ``await`` or ``async with``."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> Cursor:
        return Cursor(self._conn.cursor())

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self.__aenter__().__await__()


class Connection:
    """A sqlite3 connection with aiosqlite's async surface."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn

    @property
    def _connection(self) -> sqlite3.Connection | None:  # SQLAlchemy checks this is open
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    def cursor(self) -> _CursorOpener:
        return _CursorOpener(self._open())

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        return await Cursor(self._open().cursor()).execute(sql, parameters)

    async def commit(self) -> None:
        self._open().commit()

    async def rollback(self) -> None:
        self._open().rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open().create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level


async def connect(database: str, **kwargs: Any) -> Connection:
    """Open ``database`` (a path or ``:memory:``) for use from one event loop."""
    return Connection(sqlite3.connect(database, check_same_thread=False, **kwargs))
