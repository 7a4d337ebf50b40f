"""``flowplane work-queue``: create, list, inspect, change, pause, delete and preview work queues."""

from __future__ import annotations

from typing import Any, Optional

import typer

from flowplane.cli._api import ago, api_client, confirm_or_exit, console, output_option, wants_json
from flowplane.cli.output import fail, print_json
from flowplane.cli.work_pools import preview_runs, print_preview

app = typer.Typer(help="Manage work queues inside work pools.", no_args_is_help=True)

POOL_HELP = "The work pool the queue is in (default: the default agent pool)."


def _pool_option() -> Any:
    return typer.Option(None, "--pool", "-p", help=POOL_HELP)


def _read(client: Any, name: str, pool: str | None) -> Any:
    from flowplane.exceptions import ObjectNotFound

    try:
        return client.read_work_queue_by_name(name, work_pool_name=pool)
    except ObjectNotFound:
        where = f" in work pool {pool!r}" if pool else ""
        fail(f"Work queue {name!r} not found{where}.")


@app.command()
def create(
    name: str = typer.Argument(..., help="The queue's name."),
    pool: Optional[str] = _pool_option(),
    limit: Optional[int] = typer.Option(None, "--limit", "-l", min=0, help="Concurrency limit."),
    priority: Optional[int] = typer.Option(
        None, "--priority", min=1, help="1 is served first (default: after the pool's others)."
    ),
    description: Optional[str] = typer.Option(None, "--description", help="A description."),
    output: Optional[str] = output_option(),
) -> None:
    """Create a work queue."""
    from flowplane.exceptions import ObjectAlreadyExists, ObjectNotFound

    as_json = wants_json(output)
    with api_client() as client:
        try:
            queue = client.create_work_queue(
                name,
                description=description,
                concurrency_limit=limit,
                priority=priority,
                work_pool_name=pool,
            )
        except ObjectAlreadyExists:
            fail(
                f"Work queue {name!r} already exists in work pool {pool or 'default-agent-pool'!r}."
            )
        except ObjectNotFound:
            fail(f"Work pool {pool!r} not found.")
    if as_json:
        print_json(queue)
        return
    typer.echo(f"Created work queue {queue.name!r} in work pool {queue.work_pool_name!r}.")


@app.command("ls")
def ls(pool: Optional[str] = _pool_option(), output: Optional[str] = output_option()) -> None:
    """List work queues (of one pool with --pool), by priority."""
    from flowplane.exceptions import ObjectNotFound

    as_json = wants_json(output)
    with api_client() as client:
        try:
            queues = client.read_work_queues(work_pool_name=pool)
        except ObjectNotFound:
            fail(f"Work pool {pool!r} not found.")
    if as_json:
        print_json(queues)
        return
    if not queues:
        typer.echo("No work queues found.")
        return
    from rich.table import Table

    table = Table(title="Work Queues")
    for column in ("Name", "Pool", "Priority", "Status", "Concurrency Limit", "Last Polled", "ID"):
        table.add_column(column, no_wrap=True)
    for q in queues:
        table.add_row(
            q.name,
            q.work_pool_name or "",
            str(q.priority),
            q.status.value if q.status else "",
            "" if q.concurrency_limit is None else str(q.concurrency_limit),
            ago(q.last_polled) or "never",
            str(q.id),
        )
    console().print(table)


@app.command()
def inspect(
    name: str = typer.Argument(..., help="The queue's name."),
    pool: Optional[str] = _pool_option(),
    output: Optional[str] = output_option(),
) -> None:
    """Show a work queue and its health."""
    as_json = wants_json(output)
    with api_client() as client:
        queue = _read(client, name, pool)
        health = client.read_work_queue_status(queue.id)
    if as_json:
        print_json(queue)
        return
    from rich.pretty import Pretty

    out = console()
    out.print(Pretty(queue.model_dump(mode="json")))
    out.print(f"Healthy: {health.healthy} (late runs: {health.late_runs_count})")


@app.command()
def update(
    name: str = typer.Argument(..., help="The queue's name."),
    pool: Optional[str] = _pool_option(),
    limit: Optional[int] = typer.Option(None, "--limit", "-l", min=0, help="Concurrency limit."),
    priority: Optional[int] = typer.Option(None, "--priority", min=1, help="New priority."),
    description: Optional[str] = typer.Option(None, "--description", help="A description."),
) -> None:
    """Change a work queue's limit, priority or description."""
    fields = {
        k: v
        for k, v in (
            ("concurrency_limit", limit),
            ("priority", priority),
            ("description", description),
        )
        if v is not None
    }
    if not fields:
        fail("Nothing to change: give --limit, --priority or --description.")
    with api_client() as client:
        queue = _read(client, name, pool)
        client.update_work_queue(queue.id, **fields)
    typer.echo(f"Updated work queue {name!r}.")


def _set_paused(name: str, pool: str | None, paused: bool) -> None:
    with api_client() as client:
        queue = _read(client, name, pool)
        client.update_work_queue(queue.id, is_paused=paused)
    typer.echo(f"{'Paused' if paused else 'Resumed'} work queue {name!r}.")


@app.command()
def pause(
    name: str = typer.Argument(..., help="The queue's name."), pool: Optional[str] = _pool_option()
) -> None:
    """Pause a work queue: workers take no runs from it until it is resumed."""
    _set_paused(name, pool, True)


@app.command()
def resume(
    name: str = typer.Argument(..., help="The queue's name."), pool: Optional[str] = _pool_option()
) -> None:
    """Resume a paused work queue."""
    _set_paused(name, pool, False)


@app.command()
def delete(
    name: str = typer.Argument(..., help="The queue's name."),
    pool: Optional[str] = _pool_option(),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a work queue (not a pool's default queue)."""
    from flowplane.exceptions import HTTPStatusError

    with api_client() as client:
        queue = _read(client, name, pool)
        confirm_or_exit(f"Delete work queue {name!r}?", yes, required=True)
        try:
            client.delete_work_queue_by_id(queue.id)
        except HTTPStatusError as exc:
            fail(str(exc))
    typer.echo(f"Deleted work queue {name!r}.")


@app.command()
def preview(
    name: str = typer.Argument(..., help="The queue's name."),
    pool: Optional[str] = _pool_option(),
    hours: float = typer.Option(1.0, "--hours", "-h", min=0, help="How far ahead to look."),
    output: Optional[str] = output_option(),
) -> None:
    """Show the runs scheduled for the queue in the next hours."""
    as_json = wants_json(output)
    with api_client() as client:
        queue = _read(client, name, pool)
        runs = preview_runs(client, hours, work_queue_filter={"id": {"any_": [str(queue.id)]}})
    print_preview(runs, as_json, f"work queue {name!r}")
