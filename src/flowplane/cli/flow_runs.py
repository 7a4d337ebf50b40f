"""``flowplane flow-run``: list, inspect, read the logs of, execute, resume, delete and cancel flow runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional

import typer

from flowplane.cli._api import (
    ago,
    api_client,
    confirm_or_exit,
    console,
    output_option,
    parse_id,
    wants_json,
)
from flowplane.cli.output import fail, print_json

if TYPE_CHECKING:
    from flowplane.schemas.flow_runs import FlowRun

app = typer.Typer(help="View and manage flow runs.", no_args_is_help=True)

LOGS_PAGE_SIZE = 200
LOGS_DEFAULT_COUNT = 20
#: The message of the Failed state a run ends in when its pause expires.
PAUSE_EXPIRED = "The flow was paused and never resumed."


def _state_name_filter(names: list[str]) -> list[str]:
    """Let people type state names in any case: 'completed' -> 'Completed'."""
    from flowplane.core.states import NAMED_STATES

    by_upper = {name.upper(): name for name in NAMED_STATES}
    return [by_upper.get(n.upper(), n) for n in names]


def state_filter(states: list[str] | None, state_types: list[str] | None) -> dict[str, Any]:
    """The ``state`` part of a run filter from ``--state`` and ``--state-type`` options."""
    from flowplane.core.states import StateType

    result: dict[str, Any] = {}
    if states:
        result["name"] = {"any_": _state_name_filter(states)}
    if state_types:
        upper = [s.upper() for s in state_types]
        unknown = [s for s in upper if s not in StateType.__members__]
        if unknown:
            fail(
                f"Unknown state type {unknown[0]!r}; choose from {', '.join(StateType.__members__)}."
            )
        result["type"] = {"any_": upper}
    return result


def state_time(run: Any) -> Any:
    """When a run's state applies: its scheduled time if scheduled, else when it was entered."""
    state = run.state
    if state is None:
        return run.created
    if state.type.value == "SCHEDULED" and state.state_details.scheduled_time:
        return state.state_details.scheduled_time
    return state.timestamp


@app.command("ls")
def ls(
    flow_name: Optional[List[str]] = typer.Option(
        None, "--flow-name", help="Only runs of this flow (repeatable)."
    ),
    state: Optional[List[str]] = typer.Option(
        None, "--state", help="Only runs in this named state, e.g. Completed, Late (repeatable)."
    ),
    state_type: Optional[List[str]] = typer.Option(
        None, "--state-type", help="Only runs whose state has this type, e.g. FAILED (repeatable)."
    ),
    limit: int = typer.Option(15, "--limit", min=1, max=200, help="Show at most this many runs."),
    output: Optional[str] = output_option(),
) -> None:
    """List recent flow runs, newest first."""
    as_json = wants_json(output)
    states = state_filter(state, state_type)
    with api_client() as client:
        runs = client.read_flow_runs(
            flow_filter={"name": {"any_": flow_name}} if flow_name else None,
            flow_run_filter={"state": states} if states else None,
            sort="EXPECTED_START_TIME_DESC",
            limit=limit,
        )
        flow_ids = sorted({str(run.flow_id) for run in runs})
        flows = client.read_flows(flow_filter={"id": {"any_": flow_ids}}) if flow_ids else []
    if as_json:
        print_json(runs)
        return
    if not runs:
        typer.echo("No flow runs found.")
        return
    from rich.table import Table

    names = {flow.id: flow.name for flow in flows}
    table = Table(title="Flow Runs")
    table.add_column("ID", style="cyan", no_wrap=True)
    table.add_column("Flow", style="blue", no_wrap=True)
    table.add_column("Name", style="green", no_wrap=True)
    table.add_column("State", no_wrap=True)
    table.add_column("When", no_wrap=True)
    for run in sorted(runs, key=lambda r: r.created or state_time(r), reverse=True):
        table.add_row(
            str(run.id),
            names.get(run.flow_id, str(run.flow_id)),
            run.name,
            run.state.name if run.state else "",
            ago(state_time(run)),
        )
    console().print(table)


def _read_run(client: Any, run_id: Any) -> FlowRun:
    from flowplane.exceptions import ObjectNotFound

    try:
        return client.read_flow_run(run_id)
    except ObjectNotFound:
        fail(f"Flow run {run_id} not found.")


@app.command()
def inspect(
    id: str = typer.Argument(..., help="The flow run's id."),
    output: Optional[str] = output_option(),
) -> None:
    """Show everything about one flow run."""
    as_json = wants_json(output)
    run_id = parse_id(id, "flow run")
    with api_client() as client:
        run = _read_run(client, run_id)
    if as_json:
        print_json(run)
        return
    from rich.pretty import Pretty

    console().print(Pretty(run))


@app.command()
def logs(
    id: str = typer.Argument(..., help="The flow run's id."),
    head: bool = typer.Option(
        False, "--head", "-h", help=f"Show the first {LOGS_DEFAULT_COUNT} lines (or --num-logs)."
    ),
    tail: bool = typer.Option(
        False, "--tail", "-t", help=f"Show the last {LOGS_DEFAULT_COUNT} lines (or --num-logs)."
    ),
    num_logs: Optional[int] = typer.Option(
        None, "--num-logs", "-n", min=1, help="How many lines --head/--tail show."
    ),
    reverse: bool = typer.Option(False, "--reverse", "-r", help="Newest lines first."),
    output: Optional[str] = output_option(),
) -> None:
    """Print a flow run's logs, oldest first."""
    import logging

    as_json = wants_json(output)
    if head and tail:
        fail("Give --head or --tail, not both.")
    run_id = parse_id(id, "flow run")
    count = (num_logs or LOGS_DEFAULT_COUNT) if (head or tail or num_logs) else None
    newest_first = tail or reverse
    log_filter = {"flow_run_id": {"any_": [str(run_id)]}}
    lines: list[Any] = []
    with api_client() as client:
        run = _read_run(client, run_id)
        while count is None or len(lines) < count:
            page_size = LOGS_PAGE_SIZE if count is None else min(LOGS_PAGE_SIZE, count - len(lines))
            page = client.read_logs(
                log_filter=log_filter,
                limit=page_size,
                offset=len(lines),
                sort="TIMESTAMP_DESC" if newest_first else "TIMESTAMP_ASC",
            )
            lines.extend(page)
            if len(page) < page_size:
                break
    if tail and not reverse:
        lines.reverse()  # the last N, printed oldest first
    if as_json:
        print_json(lines)
        return
    for line in lines:
        stamp = f"{line.timestamp:%Y-%m-%d %H:%M:%S.%f}"[:-3]
        level = f"{logging.getLevelName(line.level):7s}"
        typer.echo(f"{stamp} | {level} | Flow run {run.name!r} - {line.message}")


@app.command()
def execute(
    id: str = typer.Argument(..., help="The flow run's id."),
    entrypoint: Optional[str] = typer.Option(
        None,
        "--entrypoint",
        "-e",
        help="The flow to run it with, as path/to/file.py:flow_name or module:flow_name "
        "(default: its deployment's entrypoint, after the deployment's pull steps).",
    ),
) -> None:
    """Run an existing flow run in this process, as a worker does: exit 0 if it ends Completed."""
    from flowplane.cli._api import one_line_errors
    from flowplane.exceptions import ObjectNotFound, Pause

    run_id = parse_id(id, "flow run")
    with one_line_errors():
        from flowplane.deploy.execute import execute_flow_run

        try:
            state = execute_flow_run(run_id, entrypoint)
        except ObjectNotFound:
            fail(f"Flow run {run_id} not found.")
        except Pause:
            # Suspended: this process is done with it; it runs again once resumed.
            typer.echo(f"Flow run {run_id} is suspended; it will run again when resumed.")
            return
    if state.type.value != "COMPLETED":
        raise typer.Exit(1)


@app.command()
def delete(
    id: str = typer.Argument(..., help="The flow run's id."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a flow run, with its task runs and logs."""
    from flowplane.exceptions import ObjectNotFound

    run_id = parse_id(id, "flow run")
    confirm_or_exit(f"Delete flow run {run_id}?", yes)
    with api_client() as client:
        try:
            client.delete_flow_run(run_id)
        except ObjectNotFound:
            fail(f"Flow run {run_id} not found.")
    typer.echo(f"Deleted flow run {run_id}.")


@app.command()
def cancel(id: str = typer.Argument(..., help="The flow run's id.")) -> None:
    """Cancel a flow run: it moves to Cancelling, and to Cancelled once nothing runs it."""
    from flowplane.exceptions import ObjectNotFound

    run_id = parse_id(id, "flow run")
    with api_client() as client:
        try:
            result = client.set_flow_run_state(run_id, {"type": "CANCELLING", "name": "Cancelling"})
        except ObjectNotFound:
            fail(f"Flow run {run_id} not found.")
    reason = getattr(result.details, "reason", None)
    if result.status.value == "ABORT":
        fail(f"Flow run {run_id} could not be cancelled: {reason or 'the orchestrator refused'}")
    # A REJECT may still end in Cancelled: a run with nothing to stop skips Cancelling.
    state_type = result.state.type.value if result.state is not None else None
    if state_type == "CANCELLED":
        typer.echo(f"Flow run {run_id} was cancelled.")
    elif state_type == "CANCELLING":
        typer.echo(f"Flow run {run_id} was scheduled for cancellation.")
    else:
        fail(f"Flow run {run_id} could not be cancelled: {reason or result.status.value.lower()}")


@app.command()
def resume(
    id: str = typer.Argument(..., help="The paused flow run's id."),
    input: Optional[str] = typer.Option(
        None,
        "--input",
        "-i",
        help="The input the run waits for, as a JSON object, e.g. '{\"approved\": true}'.",
    ),
) -> None:
    """Resume a paused flow run, with the input it waits for if it waits for some."""
    import json

    run_id = parse_id(id, "flow run")
    run_input: dict[str, Any] | None = None
    if input is not None:
        try:
            run_input = json.loads(input)
        except ValueError as exc:
            fail(f"--input is not valid JSON: {exc}")
        if not isinstance(run_input, dict):
            fail('--input must be a JSON object, e.g. \'{"name": "value"}\'.')
    with api_client() as client:
        run = _read_run(client, run_id)
        if run.state is None or run.state.type.value != "PAUSED":
            if run.state is not None and run.state.message == PAUSE_EXPIRED:
                fail(f"Flow run {run_id} can no longer be resumed: its pause timed out.")
            current = run.state.name if run.state is not None else "no state"
            fail(f"Flow run {run_id} is not paused (it is {current}).")
        result = client.resume_flow_run(run_id, run_input=run_input)
    reason = getattr(result.details, "reason", None)
    status = result.status.value
    if status == "ABORT":
        fail(f"Flow run {run_id} is not paused.")
    if status == "REJECT":
        if result.state is not None and result.state.type.value == "FAILED":
            fail(f"Flow run {run_id} can no longer be resumed: its pause timed out.")
        fail(f"Flow run {run_id} was not resumed: {reason or 'the orchestrator refused'}")
    if status == "WAIT":
        fail(f"Flow run {run_id} was not resumed yet: the orchestrator asked to wait; try again.")
    typer.echo(f"Flow run {run_id} resumed.")
