"""A lean HTTP/1.1 keep-alive client for load generation: one connection, JSON in and out.

httpx spends about a millisecond of CPU per request; on a 2-core machine the load
generator then takes the CPU the server under test needs. This client does the
minimum (build bytes, read status, headers and a Content-Length or chunked body),
so both servers compared are measured with the same cheap load.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import orjson


class HTTPError(Exception):
    """The connection failed or the answer could not be read."""


class Connection:
    """One keep-alive connection to ``base_url`` (e.g. ``http://127.0.0.1:4200/api``)."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
            self._writer = self._reader = None

    async def post(self, path: str, payload: Any) -> tuple[int, Any]:
        """POST ``payload`` as JSON; returns the status and the decoded JSON body (or None)."""
        try:
            return await asyncio.wait_for(self._post(path, payload), self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            await self.close()
            raise HTTPError(type(exc).__name__) from exc

    async def _post(self, path: str, payload: Any) -> tuple[int, Any]:
        if self._writer is None:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        body = orjson.dumps(payload)
        head = (
            f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self._writer.write(head + body)
        raw_head = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self._reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
        else:
            data = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, (orjson.loads(data) if data else None)
