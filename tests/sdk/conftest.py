"""SDK test fixtures: writers flushed and stopped after each test, and helpers to read runs back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _close_writers() -> Iterator[None]:
    """Each test's writer threads send what they hold and stop before its embedded server does."""
    yield
    from flowplane.sdk._api import close_server_clients
    from flowplane.sdk.writer import close_all_writers

    close_all_writers()
    close_server_clients()


@pytest.fixture
def client() -> Iterator[Any]:
    """A sync client on this test's embedded API."""
    from flowplane.client import get_client

    with get_client(sync_client=True) as c:
        yield c
