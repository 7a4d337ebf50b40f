"""Helpers for client tests: a real ``flowplane server start`` subprocess and one awaitable face for sync and async clients."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

FLOWPLANE = str(Path(sys.executable).with_name("flowplane"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``flowplane server start`` on a free 127.0.0.1 port, stopped by PID."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
        environ.update(FLOWPLANE_HOME=str(home), **env)
        self.log = (home / "server.log").open("w")
        self.process = subprocess.Popen(
            [FLOWPLANE, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {(self.home / 'server.log').read_text()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become healthy in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


class Face:
    """One way to call the client: its methods are awaited, whether the client is sync or async.

    The sync client runs in a worker thread so the same ``async def`` test exercises both.
    """

    def __init__(self, client: Any, is_async: bool) -> None:
        self.client = client
        self.is_async = is_async

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if self.is_async:
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(functools.partial(method, *args, **kwargs))

        return call


async def open_face(kind: str, **kwargs: Any) -> tuple[Face, Any]:
    """A face of ``kind`` ('sync' or 'async') and the closer to call afterwards."""
    from flowplane.client import get_client

    if kind == "async":
        client = get_client(**kwargs)
        await client.__aenter__()
        return Face(client, True), client.aclose
    client = get_client(sync_client=True, **kwargs)
    client.__enter__()

    async def close() -> None:
        client.close()

    return Face(client, False), close
