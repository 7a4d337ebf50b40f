"""Engines and sessions: SQLite gets WAL, foreign keys and a busy timeout on every connection."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from flowplane.server.db import sqlite_inline

#: WAL pages written before a commit checkpoints them into the database (SQLite: 1000).
WAL_AUTOCHECKPOINT_PAGES = 10_000


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_engine(url: str, timeout: float = 10.0, echo: bool = False) -> AsyncEngine:
    """An async engine for ``url``, configured for the dialect.

    SQLite: the folder is created, statements run inline on the event loop
    (``sqlite_inline``), each connection is put in WAL mode with foreign keys on and a
    busy timeout of ``timeout`` seconds, and transactions begin IMMEDIATE when they
    write so concurrent writers queue instead of failing with "database is locked".
    """
    parsed = make_url(url)
    # orjson is several times faster than the stdlib for JSON columns (every run row has
    # four); it emits compact UTF-8 and understands datetimes and UUIDs natively.
    kwargs: dict[str, Any] = {
        "echo": echo,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        path = database or ":memory:"
        kwargs["async_creator"] = functools.partial(
            sqlite_inline.connect, path, timeout=timeout, isolation_level=None
        )
        if path == ":memory:":
            kwargs["poolclass"] = sa.pool.StaticPool
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine, timeout)
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True, pool_recycle=1800)
        kwargs["connect_args"] = {"command_timeout": max(timeout, 30.0)}
        return create_async_engine(url, **kwargs)
    return create_async_engine(url, poolclass=NullPool, **kwargs)


def _configure_sqlite(engine: AsyncEngine, timeout: float) -> None:
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-32000")
        cursor.execute("PRAGMA temp_store=MEMORY")
        # A checkpoint (copying the WAL back into the database, two fsyncs) runs inside
        # whichever commit crosses the threshold. At SQLite's default of 1000 pages that
        # was every ~150 run transactions, 5-10 ms each, ~0.3 ms added to the average
        # commit; at 10000 the fsyncs are paid ten times less often and pages rewritten
        # in between (indexes, hot rows) are copied once. The WAL file then stays ~40 MB.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # The driver runs in autocommit mode (isolation_level=None), so SQLAlchemy's
        # BEGIN is ours to emit. IMMEDIATE takes the write lock up front: a writer
        # waits its turn (busy_timeout) instead of failing on lock upgrade. Readers
        # (engine copies marked read_only) begin DEFERRED and never block writers.
        # Sent on the driver's cursor: through exec_driver_sql, SQLAlchemy's statement
        # machinery (context, events, result) cost more than the BEGIN itself, three times
        # a flow run.
        # Its errors are wrapped as SQLAlchemy's would be (OperationalError and kin).
        statement = "BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE"
        dbapi_error = conn.dialect.loaded_dbapi.Error
        cursor = conn.connection.cursor()
        try:
            cursor.execute(statement)
        except dbapi_error as exc:
            raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi_error) from exc
        finally:
            cursor.close()


class Database:
    """The engine and a session factory; lives on ``app.state.db``."""

    def __init__(self, url: str, timeout: float = 10.0, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, timeout=timeout, echo=echo)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessionmaker = async_sessionmaker(
            self.engine.execution_options(read_only=True), expire_on_commit=False
        )
        # SQLite runs inline on the loop: a second writer of this process must wait
        # here (suspending) rather than in SQLite's busy handler (blocking the loop
        # while the first writer cannot finish). PostgreSQL needs no such gate.
        self._write_gate: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A writing session whose transaction commits on success and rolls back on error."""
        if self._write_gate is None:
            async with self.sessionmaker() as session:
                async with session.begin():
                    yield session
            return
        async with self._write_gate:
            async with _inline_session(self.sessionmaker) as session:
                yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: on SQLite it never takes the write lock."""
        if self._write_gate is None:
            async with self.read_sessionmaker() as session:
                async with session.begin():
                    yield session
            return
        async with _inline_session(self.read_sessionmaker) as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def _inline_session(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in a transaction, closed without ``AsyncSession.__aexit__``'s shielded task.

    That shield keeps a cancellation from interrupting a close that waits on the
    network; SQLite's calls run inline and never suspend, so there is nothing to
    interrupt, and the task (and the loop round trips it takes) cost ~10% of a
    one-statement transaction, every request.
    """
    session = maker()
    try:
        async with session.begin():
            yield session
    finally:
        await session.close()
