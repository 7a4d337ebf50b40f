"""Client test fixtures: server subprocesses per test class, and embedded servers stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from client_harness import ServerProcess


@pytest.fixture(scope="class")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server subprocess on its own home folder, shared by the tests of a class."""
    proc = ServerProcess(tmp_path_factory.mktemp("server-home"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="class")
def csrf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server subprocess that requires CSRF tokens on writes."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("csrf-home"), FLOWPLANE_SERVER_CSRF_PROTECTION_ENABLED="true"
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def _stop_embedded_servers() -> Iterator[None]:
    """Each test's embedded server (its own home, its own database) stops with the test."""
    yield
    from flowplane.embedded import shutdown_embedded_servers

    shutdown_embedded_servers()
