"""Helpers for API tests (a module of its own: test files import it by name)."""

from __future__ import annotations

from typing import Any


async def post_and_store(served: tuple[Any, Any], events: list[dict[str, Any]]) -> None:
    """POST ``events`` to the served app and wait until its services have stored them."""
    app, http = served
    response = await http.post("/events", json=events)
    assert response.status_code == 204, response.text
    await flush(app)


async def flush(app: Any) -> None:
    """Write what the background services hold, without waiting for their timers."""
    for service in app.state.services.services:
        await service.flush()
