"""Migrations build exactly the schema tables.py declares, and go down and up cleanly."""

from __future__ import annotations

import warnings

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from flowplane.server.db import migrate
from flowplane.server.db.session import WAL_AUTOCHECKPOINT_PAGES, create_engine
from flowplane.server.db.tables import metadata


def _diff(sync_conn: sa.Connection) -> list:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    with warnings.catch_warnings():
        # SQLite cannot reflect expression (DESC) indexes; alembic warns and skips them.
        warnings.simplefilter("ignore", UserWarning)
        diff = compare_metadata(context, metadata)
    if sync_conn.dialect.name == "sqlite":
        # On SQLite, DESC indexes cannot be reflected (so they always "differ") and the
        # GIN tag indexes are PostgreSQL-only (ddl_if); PostgreSQL checks them for real.
        diff = [
            d
            for d in diff
            if not (
                d[0] in ("add_index", "remove_index") and d[1].name.endswith(("_desc", "__tags"))
            )
        ]
    return diff


def _head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate._config(None)).get_current_head()


@pytest.fixture
async def engine(database_url: str):
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


async def test_head_matches_tables(engine) -> None:
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_down_to_base_and_up_again(engine) -> None:
    await migrate.downgrade(engine, "base")
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    assert set(names) <= {"alembic_version"}
    assert await migrate.current_revision(engine) is None
    await migrate.upgrade(engine)
    assert await migrate.current_revision(engine) == _head_revision()
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    expected = {
        "flow",
        "flow_run",
        "task_run",
        "log",
        "event",
        "concurrency_limit",
        "concurrency_lease",
    }
    assert expected <= set(names)


async def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_url: str) -> None:
    eng = create_engine(sqlite_url)
    try:
        async with eng.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 10000
            checkpoint = await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")
            assert checkpoint.scalar() == WAL_AUTOCHECKPOINT_PAGES
    finally:
        await eng.dispose()


def test_head_revision_constant_matches_the_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == migrate.HEAD_REVISION


async def test_ensure_current_migrates_an_empty_database_and_then_does_nothing(tmp_path) -> None:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        await migrate.ensure_current(eng)
        assert await migrate.current_revision(eng) == migrate.HEAD_REVISION
        await migrate.ensure_current(eng)  # a second call finds it current
        assert await migrate.current_revision(eng) == migrate.HEAD_REVISION
    finally:
        await eng.dispose()


def _schema_objects(sync_conn: sa.Connection) -> set[tuple[str, str, str]]:
    rows = sync_conn.exec_driver_sql(
        "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    )
    return {tuple(row) for row in rows}


async def test_a_new_sqlite_database_is_built_from_tables_as_the_migrations_build_it(
    tmp_path,
) -> None:
    fast = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fast.db'}")
    migrated = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}")
    try:
        await migrate.ensure_current(fast)  # empty: built from tables.py and stamped
        await migrate.upgrade(migrated)  # the same schema through every migration
        async with fast.connect() as conn:
            assert await conn.run_sync(_diff) == []
            built = await conn.run_sync(_schema_objects)
        async with migrated.connect() as conn:
            assert built == await conn.run_sync(_schema_objects)
        assert await migrate.current_revision(fast) == migrate.HEAD_REVISION
        # Alembic takes it from there like any migrated database.
        await migrate.downgrade(fast, "-1")
        await migrate.upgrade(fast)
        assert await migrate.current_revision(fast) == migrate.HEAD_REVISION
    finally:
        await fast.dispose()
        await migrated.dispose()


async def test_a_database_with_tables_but_no_version_is_left_to_alembic(tmp_path) -> None:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'odd.db'}")
    try:
        async with eng.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE something_else (x INTEGER)")
        assert await migrate._create_if_empty(eng) is False
        await migrate.ensure_current(eng)
        assert await migrate.current_revision(eng) == migrate.HEAD_REVISION
        async with eng.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert {"something_else", "task_run", "event"} <= set(names)
    finally:
        await eng.dispose()
