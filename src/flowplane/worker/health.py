"""``--with-healthcheck``: a tiny HTTP endpoint saying whether the worker still polls its pool.

``GET /health`` answers 200 while the last successful poll is recent (within a few
polling intervals), 503 otherwise — what a supervisor or container orchestrator
needs to restart a stuck worker.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def is_healthy(last_poll: float | None, query_seconds: float, now: float) -> bool:
    """Healthy when the last poll is at most a few intervals (and at least 30 s) old."""
    if last_poll is None:
        return False
    return now - last_poll <= max(query_seconds * 3, 30.0)


def serve_health(worker: Any, host: str, port: int) -> ThreadingHTTPServer:
    """Start the health endpoint for ``worker`` on a daemon thread; the server (to shut down)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") != "/health":
                self.send_error(404)
                return
            healthy = is_healthy(worker.last_poll, worker.options.query_seconds, time.monotonic())
            body = json.dumps(
                {"message": "OK" if healthy else "Worker may be unresponsive at this time"}
            ).encode()
            self.send_response(200 if healthy else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(
        target=server.serve_forever, name="flowplane-worker-health", daemon=True
    ).start()
    return server


__all__ = ["is_healthy", "serve_health"]
