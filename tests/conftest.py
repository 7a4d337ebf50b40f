"""Shared fixtures: a private home folder per test, and the API on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "FLOWPLANE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Run every ``async def`` test on asyncio through anyio's plugin (marked before parametrizing)."""
    if collector.funcnamefilter(name) and inspect.iscoroutinefunction(obj):  # type: ignore[attr-defined]
        pytest.mark.anyio(obj)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def flowplane_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own FLOWPLANE_HOME and no API URL from the outside."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FLOWPLANE_HOME", str(home))
    for key in list(os.environ):
        if (
            key.startswith("FLOWPLANE_")
            and key != "FLOWPLANE_HOME"
            and not key.startswith("FLOWPLANE_TEST_")
        ):
            monkeypatch.delenv(key)
    return home


@pytest.fixture(autouse=True)
def _stop_embedded_servers() -> Iterator[None]:
    """Embedded apps started by a test stop with it, so their threads never pile up."""
    yield
    import sys

    embedded = sys.modules.get("flowplane.embedded")
    if embedded is not None:
        embedded.shutdown_embedded_servers()


# --- databases -------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is the slow part)."""
    from flowplane.server.db import migrate
    from flowplane.server.db.session import create_engine

    path = tmp_path_factory.mktemp("template") / "flowplane.db"

    async def build() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(build())
    return path


def _postgres_available() -> str | None:
    """None if PostgreSQL answers, else the reason it does not."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    async def probe() -> None:
        engine = create_async_engine(POSTGRES_ADMIN_URL)
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure to connect means "not available"
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (dropped afterwards)."""
    reason = _postgres_available()
    if reason is not None:
        message = f"PostgreSQL tier skipped: no server at {POSTGRES_ADMIN_URL} ({reason})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)

    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from flowplane.server.db import migrate
    from flowplane.server.db.session import create_engine

    name = f"flowplane_test_{uuid.uuid4().hex[:12]}"
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(sa.text(sql))
        await engine.dispose()

    async def setup() -> None:
        await admin(f'CREATE DATABASE "{name}"')
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(setup())
    try:
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_all(url: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from flowplane.server.db.tables import metadata

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        await conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database: a private SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "flowplane.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    asyncio.run(_truncate_all(url))
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty private SQLite file (for tests that need no PostgreSQL run)."""
    path = tmp_path / "flowplane.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


# --- the API in-process ---------------------------------------------------------------


@pytest.fixture
async def app(database_url: str, flowplane_home: Path) -> AsyncIterator[object]:
    """The server app on ``database_url``, started (lifespan entered), services running."""
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    # The scheduler would add runs to tests' deployments at its own pace: its tests run it.
    settings = Settings(
        home=flowplane_home, database_url=database_url, server_services_scheduler_enabled=False
    )
    application = create_app(settings, run_migrations=False)
    async with LifespanManager(application) as manager:
        yield manager.app


@pytest.fixture
async def client(app: object) -> AsyncIterator[object]:
    """An httpx client talking to ``app`` through ASGI, rooted at ``/api``."""
    import httpx

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
        yield http
