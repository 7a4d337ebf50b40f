"""Run one client operation from SDK code, sync or async, against the API of the settings in effect."""

from __future__ import annotations

from typing import Any

from flowplane.sdk._api import async_client, current_settings, sync_client


def call_sync(operation: str, *args: Any, **kwargs: Any) -> Any:
    """``client.<operation>(*args, **kwargs)`` on a sync client, blocking until answered."""
    client, owned = sync_client(current_settings())
    try:
        return getattr(client, operation)(*args, **kwargs)
    finally:
        if owned:
            client.close()


async def call_async(operation: str, *args: Any, **kwargs: Any) -> Any:
    """``await client.<operation>(*args, **kwargs)`` on a fresh async client."""
    async with async_client(current_settings()) as client:
        return await getattr(client, operation)(*args, **kwargs)
