"""Test support for flowplane users: ``flowplane_test_harness()`` and a pytest fixture on a private, pre-migrated database.

The first use in a process builds a migrated SQLite template file (once per schema
version, cached in the temp folder); each harness then copies it into a fresh
temporary home, so starting one takes milliseconds, not a migration.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["flowplane_test_harness", "flowplane_test_fixture"]

_template_lock = threading.Lock()


def _schema_version() -> str:
    """A hash of the migration scripts: a new migration means a new template."""
    from flowplane.server.db import migrations

    folder = Path(migrations.__file__).parent / "versions"
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def template_database() -> Path:
    """A migrated, empty SQLite file to copy (built on first use, then reused)."""
    path = Path(tempfile.gettempdir()) / f"flowplane-template-{_schema_version()}.db"
    if path.exists():
        return path
    with _template_lock:
        if path.exists():
            return path
        from flowplane.server.db import migrate
        from flowplane.server.db.session import create_engine

        partial = path.with_suffix(f".{os.getpid()}.tmp")

        async def build() -> None:
            engine = create_engine(f"sqlite+aiosqlite:///{partial}")
            try:
                await migrate.upgrade(engine)
            finally:
                await engine.dispose()

        asyncio.run(build())
        os.replace(partial, path)  # atomic: concurrent builders never see half a file
    return path


_ENV_KEYS = ("FLOWPLANE_HOME", "FLOWPLANE_API_URL", "FLOWPLANE_DATABASE_URL", "FLOWPLANE_PROFILE")


@contextmanager
def flowplane_test_harness() -> Iterator[Path]:
    """Run flows inside the block against a private, temporary embedded database.

    Sets ``FLOWPLANE_HOME`` to a fresh folder holding a copy of a pre-migrated
    database and clears ``FLOWPLANE_API_URL``; afterwards flushes the run writers,
    stops the embedded server and restores the environment.

    Returns:
        A context manager yielding the temporary home folder.
    """
    home = Path(tempfile.mkdtemp(prefix="flowplane-test-"))
    shutil.copy(template_database(), home / "flowplane.db")
    saved = {key: os.environ.get(key) for key in _ENV_KEYS}
    for key in _ENV_KEYS:
        os.environ.pop(key, None)
    os.environ["FLOWPLANE_HOME"] = str(home)
    try:
        yield home
    finally:
        from flowplane.embedded import shutdown_embedded_servers
        from flowplane.sdk._api import close_server_clients
        from flowplane.sdk.writer import close_all_writers

        close_all_writers()
        close_server_clients()
        shutdown_embedded_servers()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(home, ignore_errors=True)


def flowplane_test_fixture() -> Iterator[Path]:
    """The harness as a pytest fixture body: ``fixture = pytest.fixture(flowplane_test_fixture)``.

    Or, in a ``conftest.py``::

        from flowplane.testing import flowplane_test_harness

        @pytest.fixture(autouse=True, scope="session")
        def flowplane_db():
            with flowplane_test_harness():
                yield
    """
    with flowplane_test_harness() as home:
        yield home
