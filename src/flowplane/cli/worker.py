"""``flowplane worker start``: run a work pool's flow runs as local processes."""

from __future__ import annotations

import signal
from typing import List, Optional

import typer

app = typer.Typer(help="Start workers that run deployments' flow runs.", no_args_is_help=True)


@app.command()
def start(
    pool: str = typer.Option(..., "--pool", "-p", help="The work pool to take runs from."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="The worker's name."),
    work_queue: Optional[List[str]] = typer.Option(
        None, "--work-queue", "-q", help="Only these queues of the pool (repeatable)."
    ),
    worker_type: str = typer.Option(
        "process", "--type", "-t", help="The kind of worker; flowplane ships 'process'."
    ),
    limit: Optional[int] = typer.Option(
        None, "--limit", "-l", min=1, help="Run at most this many flow runs at once."
    ),
    prefetch_seconds: float = typer.Option(
        10.0, "--prefetch-seconds", min=0, help="Claim runs scheduled this far ahead."
    ),
    query_seconds: Optional[float] = typer.Option(
        None,
        "--query-seconds",
        min=0.05,
        help="Seconds between polls of the pool (default: FLOWPLANE_WORKER_QUERY_SECONDS or 2).",
    ),
    heartbeat_seconds: float = typer.Option(
        30.0, "--heartbeat-seconds", min=1, help="Seconds between the worker's heartbeats."
    ),
    run_once: bool = typer.Option(
        False, "--run-once", help="Run what is due now, wait for it to finish, then exit."
    ),
    with_healthcheck: bool = typer.Option(
        False, "--with-healthcheck", help="Serve GET /health on the worker's web server port."
    ),
    healthcheck_port: int = typer.Option(
        8080, "--healthcheck-port", help="Port of the health endpoint (127.0.0.1)."
    ),
) -> None:
    """Poll a work pool and run its scheduled flow runs, each in its own process."""
    import logging
    import os

    from flowplane.cli._api import api_client
    from flowplane.cli.output import fail
    from flowplane.worker import ProcessWorker, WorkerOptions

    if worker_type != "process":
        fail(f"Unknown worker type {worker_type!r}; flowplane runs 'process' workers.")
    if query_seconds is None:
        query_seconds = float(os.environ.get("FLOWPLANE_WORKER_QUERY_SECONDS", "2"))
    options = WorkerOptions(
        pool=pool,
        name=name,
        work_queues=list(work_queue or []),
        type=worker_type,
        limit=limit,
        query_seconds=query_seconds,
        prefetch_seconds=prefetch_seconds,
        heartbeat_seconds=heartbeat_seconds,
        run_once=run_once,
    )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"
    )
    # One line per HTTP request would drown the worker's own messages.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with api_client() as client:
        worker = ProcessWorker(options, client)

        def on_term(signum: int, frame: object) -> None:
            worker.stop()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        health = None
        if with_healthcheck:
            from flowplane.worker.health import serve_health

            health = serve_health(worker, "127.0.0.1", healthcheck_port)
        typer.echo(f"Worker {worker.name!r} started, polling work pool {pool!r}.")
        try:
            worker.start()
        finally:
            if health is not None:
                health.shutdown()
        typer.echo(f"Worker {worker.name!r} stopped.")
