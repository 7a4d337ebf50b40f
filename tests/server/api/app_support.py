"""Helpers for API tests (a module of its own: test files import it by name)."""

from __future__ import annotations

from typing import Any


async def flush(app: Any) -> None:
    """Write what the background services hold, without waiting for their timers."""
    for service in app.state.services.services:
        await service.flush()
