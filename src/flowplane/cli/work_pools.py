"""``flowplane work-pool``: create, list, inspect, change, pause, delete and preview work pools."""

from __future__ import annotations

from typing import Any, Optional

import typer

from flowplane.cli._api import ago, api_client, confirm_or_exit, console, output_option, wants_json
from flowplane.cli.output import fail, print_json

app = typer.Typer(
    help="Manage work pools: where deployed runs wait for workers.", no_args_is_help=True
)


def read_template(path: str) -> dict[str, Any]:
    """A base job template from a JSON file, or a one-line error."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        fail(f"Cannot read {path}: {exc.strerror}.")
    except json.JSONDecodeError as exc:
        fail(f"{path} is not valid JSON: {exc}.")
    if not isinstance(data, dict):
        fail(f"{path} must hold a JSON object with job_configuration and variables.")
    return data


def _read(client: Any, name: str) -> Any:
    from flowplane.exceptions import ObjectNotFound

    try:
        return client.read_work_pool(name)
    except ObjectNotFound:
        fail(f"Work pool {name!r} not found.")


@app.command()
def create(
    name: str = typer.Argument(..., help="The pool's name."),
    type: str = typer.Option("process", "--type", "-t", help="Infrastructure type of its workers."),
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
    concurrency_limit: Optional[int] = typer.Option(
        None, "--concurrency-limit", "-l", min=0, help="At most this many runs at once."
    ),
    base_job_template: Optional[str] = typer.Option(
        None, "--base-job-template", help="A JSON file with the base job template."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Update the pool if it exists."),
    output: Optional[str] = output_option(),
) -> None:
    """Create a work pool (with its default queue)."""
    from flowplane.core.job_templates import default_template, template_problem
    from flowplane.exceptions import ObjectAlreadyExists

    as_json = wants_json(output)
    template = read_template(base_job_template) if base_job_template else default_template(type)
    problem = template_problem(template)
    if problem:
        fail(problem)
    fields: dict[str, Any] = {
        "name": name,
        "type": type,
        "is_paused": paused,
        "base_job_template": template,
    }
    if concurrency_limit is not None:
        fields["concurrency_limit"] = concurrency_limit
    with api_client() as client:
        try:
            pool = client.create_work_pool(fields, overwrite=overwrite)
        except ObjectAlreadyExists:
            fail(f"Work pool {name!r} already exists (use --overwrite to update it).")
    if as_json:
        print_json(pool)
        return
    typer.echo(f"Created work pool {pool.name!r} (type {pool.type}).")
    typer.echo(f"Start a worker for it with: flowplane worker start --pool {pool.name!r}")


@app.command("ls")
def ls(output: Optional[str] = output_option()) -> None:
    """List work pools."""
    as_json = wants_json(output)
    with api_client() as client:
        pools = client.read_work_pools()
    if as_json:
        print_json(pools)
        return
    if not pools:
        typer.echo("No work pools found.")
        return
    from rich.table import Table

    table = Table(title="Work Pools")
    for column in ("Name", "Type", "ID", "Status", "Concurrency Limit"):
        table.add_column(column, no_wrap=True)
    for pool in pools:
        table.add_row(
            pool.name,
            pool.type,
            str(pool.id),
            pool.status.value if pool.status else "",
            "" if pool.concurrency_limit is None else str(pool.concurrency_limit),
        )
    console().print(table)


@app.command()
def inspect(
    name: str = typer.Argument(..., help="The pool's name."),
    output: Optional[str] = output_option(),
) -> None:
    """Show a work pool, its queues and workers."""
    as_json = wants_json(output)
    with api_client() as client:
        pool = _read(client, name)
        queues = client.read_work_queues(work_pool_name=name)
        workers = client.read_workers_for_work_pool(name)
    if as_json:
        print_json(pool)
        return
    from rich.pretty import Pretty

    out = console()
    out.print(Pretty(pool.model_dump(mode="json")))
    out.print(f"Queues: {', '.join(f'{q.name} (priority {q.priority})' for q in queues) or 'none'}")
    out.print(
        "Workers: "
        + (
            ", ".join(f"{w.name} {w.status.value} {ago(w.last_heartbeat_time)}" for w in workers)
            or "none"
        )
    )


@app.command()
def update(
    name: str = typer.Argument(..., help="The pool's name."),
    concurrency_limit: Optional[int] = typer.Option(
        None, "--concurrency-limit", "-l", min=0, help="At most this many runs at once."
    ),
    base_job_template: Optional[str] = typer.Option(
        None, "--base-job-template", help="A JSON file with the new base job template."
    ),
    description: Optional[str] = typer.Option(None, "--description", help="A description."),
) -> None:
    """Change a work pool's limit, base job template or description."""
    from flowplane.core.job_templates import template_problem

    fields: dict[str, Any] = {}
    if concurrency_limit is not None:
        fields["concurrency_limit"] = concurrency_limit
    if base_job_template is not None:
        template = read_template(base_job_template)
        problem = template_problem(template)
        if problem:
            fail(problem)
        fields["base_job_template"] = template
    if description is not None:
        fields["description"] = description
    if not fields:
        fail("Nothing to change: give --concurrency-limit, --base-job-template or --description.")
    with api_client() as client:
        _read(client, name)
        client.update_work_pool(name, fields)
    typer.echo(f"Updated work pool {name!r}.")


def _set_paused(name: str, paused: bool) -> None:
    with api_client() as client:
        _read(client, name)
        client.update_work_pool(name, {"is_paused": paused})
    typer.echo(f"{'Paused' if paused else 'Resumed'} work pool {name!r}.")


@app.command()
def pause(name: str = typer.Argument(..., help="The pool's name.")) -> None:
    """Pause a work pool: workers get no runs from it until it is resumed."""
    _set_paused(name, True)


@app.command()
def resume(name: str = typer.Argument(..., help="The pool's name.")) -> None:
    """Resume a paused work pool."""
    _set_paused(name, False)


@app.command()
def delete(
    name: str = typer.Argument(..., help="The pool's name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a work pool with its queues (its runs stay, no longer queued)."""
    with api_client() as client:
        _read(client, name)
        confirm_or_exit(f"Delete work pool {name!r}?", yes, required=True)
        client.delete_work_pool(name)
    typer.echo(f"Deleted work pool {name!r}.")


def preview_runs(client: Any, hours: float, **link_filter: Any) -> list[Any]:
    """Scheduled runs due within ``hours`` for a pool or queue, soonest first (nothing is claimed)."""
    import datetime as dt

    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours)
    runs: list[Any] = client.read_flow_runs(
        flow_run_filter={
            "state": {"type": {"any_": ["SCHEDULED"]}},
            "expected_start_time": {"before_": until.isoformat()},
        },
        sort="EXPECTED_START_TIME_ASC",
        limit=200,
        **link_filter,
    )
    return runs


def print_preview(runs: list[Any], as_json: bool, what: str) -> None:
    if as_json:
        print_json(runs)
        return
    if not runs:
        typer.echo(f"No runs scheduled for {what} in that time.")
        return
    from rich.table import Table

    table = Table(title=f"Scheduled runs for {what}")
    for column in ("Scheduled", "Run", "ID", "Queue"):
        table.add_column(column, no_wrap=True)
    for run in runs:
        when = run.next_scheduled_start_time or run.expected_start_time
        table.add_row(
            f"{when:%Y-%m-%d %H:%M:%S} ({ago(when)})" if when else "",
            run.name,
            str(run.id),
            run.work_queue_name or "",
        )
    console().print(table)


@app.command()
def preview(
    name: str = typer.Argument(..., help="The pool's name."),
    hours: float = typer.Option(1.0, "--hours", "-h", min=0, help="How far ahead to look."),
    output: Optional[str] = output_option(),
) -> None:
    """Show the runs scheduled for the pool's queues in the next hours."""
    as_json = wants_json(output)
    with api_client() as client:
        _read(client, name)
        runs = preview_runs(client, hours, work_pool_filter={"name": {"any_": [name]}})
    print_preview(runs, as_json, f"work pool {name!r}")
