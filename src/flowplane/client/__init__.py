"""The flowplane API client: ``get_client()`` for async code, ``get_client(sync_client=True)`` for sync code.

Operations are described once (``flowplane.client._flows`` and siblings) and run
by two thin shells, :class:`AsyncClient` and :class:`Client`. Without an API URL
the client talks to an API embedded in this process (``flowplane.embedded``).
"""

from __future__ import annotations

from flowplane.client._protocol import Call
from flowplane.client._shells import AsyncClient, Client, get_client

__all__ = ["AsyncClient", "Call", "Client", "get_client"]
