"""Fixtures of the API tests: a started app and an HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest


@pytest.fixture
async def served(
    database_url: str, flowplane_home: Path
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The started app (for its state) and a client for it (test files may define their own)."""
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    application = create_app(
        Settings(home=flowplane_home, database_url=database_url), run_migrations=False
    )
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
            yield application, http
