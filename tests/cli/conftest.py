"""CLI test fixtures: embedded servers opened for seeding are stopped before the next test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _stop_embedded_servers() -> Iterator[None]:
    yield
    from flowplane.embedded import shutdown_embedded_servers

    shutdown_embedded_servers()
