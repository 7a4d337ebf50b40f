"""Fixtures for deploy tests: a real ``flowplane server start`` subprocess shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deploy_harness import LiveServer, start_server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("deploy-server"))
    try:
        yield server
    finally:
        server.stop()
