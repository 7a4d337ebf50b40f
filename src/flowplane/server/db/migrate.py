"""Upgrade, downgrade and reset the database schema with Alembic, in-process.

Alembic is imported only when a migration has to run: a process that finds its
database already at ``HEAD_REVISION`` (every start but the first) skips it, and an
empty SQLite database gets the newest schema straight from ``tables.py`` (which a
test pins to what the migrations build) stamped with ``HEAD_REVISION``, which keeps
embedded mode's very first flow run fast too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"

#: The newest migration; a test checks it against Alembic's own view of the scripts.
HEAD_REVISION = "0007"


async def ensure_current(engine: AsyncEngine) -> None:
    """Upgrade to the newest schema unless the database is there already (one cheap query)."""
    try:
        async with engine.connect() as conn:
            version = (
                await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).scalar()
    except sa.exc.DBAPIError:
        version = None  # no alembic_version table: an empty database
    if version == HEAD_REVISION:
        return
    if version is None and engine.dialect.name == "sqlite" and await _create_if_empty(engine):
        return
    await upgrade(engine)


async def _create_if_empty(engine: AsyncEngine) -> bool:
    """Create the newest schema in an empty SQLite database and stamp it; False if not empty.

    Without Alembic and its per-migration work (table rebuilds in batch mode), a new
    home's database is ready in a fraction of the time. The transaction begins IMMEDIATE
    (see ``session.py``), taking the write lock before looking, so two processes
    creating the same new database do not both build it: the second finds tables and
    leaves the rest to :func:`upgrade`.
    """
    from flowplane.server.db.tables import metadata

    async with engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite (see session.py)
        tables = (
            await conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%'"
            )
        ).scalar()
        if tables:
            return False
        await conn.run_sync(lambda sync: metadata.create_all(sync, checkfirst=False))
        await conn.exec_driver_sql(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        await conn.exec_driver_sql(
            "INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD_REVISION,)
        )
    return True


def _config(connection: Any) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), revision))


async def downgrade(engine: AsyncEngine, revision: str = "-1") -> None:
    """Take the schema down to ``revision`` (default: one step)."""
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(_config(sync), revision))


async def reset(engine: AsyncEngine) -> None:
    """Drop every table and migrate up again: all data is lost."""
    await downgrade(engine, "base")
    await upgrade(engine, "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def revision(engine_sync_connection: Any, message: str) -> None:  # pragma: no cover - dev tool
    """Autogenerate a new migration from the tables (developers only)."""
    from alembic import command

    command.revision(_config(engine_sync_connection), message=message, autogenerate=True)
