"""The shape every background service has: started with the app, stopped with it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

logger = logging.getLogger("flowplane.server.services")


class Service(Protocol):
    """A long-running coroutine owned by the app."""

    name: str

    async def run(self) -> None:
        """Run until cancelled."""

    async def flush(self) -> None:
        """Write what is buffered now (readers that need their writes visible call it)."""

    async def drain(self) -> None:
        """Finish in-flight work before shutdown (flush buffers)."""


class ServiceRunner:
    """Starts services as tasks and stops them, draining each, in reverse order."""

    def __init__(self, services: list[Any]) -> None:
        self.services = services
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for service in self.services:
            self._tasks.append(asyncio.create_task(self._guard(service), name=service.name))

    async def _guard(self, service: Any) -> None:
        while True:
            try:
                await service.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Service %s failed; restarting in 1s", service.name)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        for task in reversed(self._tasks):
            task.cancel()
        for task in reversed(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        for service in reversed(self.services):
            try:
                await service.drain()
            except Exception:
                logger.exception("Service %s failed to drain", service.name)
        self._tasks.clear()
