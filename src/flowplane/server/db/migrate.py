"""Upgrade, downgrade and reset the database schema with Alembic, in-process.

Alembic is imported only when a migration has to run: a process that finds its
database already at ``HEAD_REVISION`` (every start but the first) skips it, which
keeps embedded mode's first flow run fast.
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
HEAD_REVISION = "0005"


async def ensure_current(engine: AsyncEngine) -> None:
    """Upgrade to the newest schema unless the database is there already (one cheap query)."""
    try:
        async with engine.connect() as conn:
            version = (
                await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).scalar()
    except sa.exc.DBAPIError:
        version = None  # no alembic_version table: an empty database
    if version != HEAD_REVISION:
        await upgrade(engine)


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
