"""``flowplane task-run``: list and inspect task runs."""

from __future__ import annotations

from typing import List, Optional

import typer

from flowplane.cli._api import ago, api_client, console, output_option, parse_id, wants_json
from flowplane.cli.flow_runs import state_filter, state_time
from flowplane.cli.output import fail, print_json

app = typer.Typer(help="View task runs.", no_args_is_help=True)


@app.command("ls")
def ls(
    state: Optional[List[str]] = typer.Option(
        None, "--state", help="Only runs in this named state (repeatable)."
    ),
    state_type: Optional[List[str]] = typer.Option(
        None, "--state-type", help="Only runs whose state has this type (repeatable)."
    ),
    limit: int = typer.Option(
        15, "--limit", min=1, max=200, help="Show at most this many task runs."
    ),
    output: Optional[str] = output_option(),
) -> None:
    """List recent task runs, newest first."""
    as_json = wants_json(output)
    states = state_filter(state, state_type)
    with api_client() as client:
        runs = client.read_task_runs(
            task_run_filter={"state": states} if states else None,
            sort="EXPECTED_START_TIME_DESC",
            limit=limit,
        )
    if as_json:
        print_json(runs)
        return
    if not runs:
        typer.echo("No task runs found.")
        return
    from rich.table import Table

    table = Table(title="Task Runs")
    table.add_column("ID", style="cyan", no_wrap=True)
    table.add_column("Task", style="blue", no_wrap=True)
    table.add_column("Name", style="green", no_wrap=True)
    table.add_column("Flow run", no_wrap=True)
    table.add_column("State", no_wrap=True)
    table.add_column("When", no_wrap=True)
    for run in sorted(runs, key=lambda r: r.created or state_time(r), reverse=True):
        table.add_row(
            str(run.id),
            run.task_key,
            run.name,
            str(run.flow_run_id or ""),
            run.state.name if run.state else (run.state_name or ""),
            ago(state_time(run)),
        )
    console().print(table)


@app.command()
def inspect(
    id: str = typer.Argument(..., help="The task run's id."),
    output: Optional[str] = output_option(),
) -> None:
    """Show everything about one task run."""
    from flowplane.exceptions import ObjectNotFound

    as_json = wants_json(output)
    run_id = parse_id(id, "task run")
    with api_client() as client:
        try:
            run = client.read_task_run(run_id)
        except ObjectNotFound:
            fail(f"Task run {run_id} not found.")
    if as_json:
        print_json(run)
        return
    from rich.pretty import Pretty

    console().print(Pretty(run))
