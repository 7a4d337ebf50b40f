"""``flowplane deployment``: list, inspect, pause, resume, delete, run and backfill deployments."""

from __future__ import annotations

from typing import Any, List, Optional

import typer

from flowplane.cli._api import ago, api_client, confirm_or_exit, console, output_option, wants_json
from flowplane.cli.output import fail, print_json

app = typer.Typer(help="View, run and manage deployments.", no_args_is_help=True)

NAME_HELP = "The deployment: flow-name/deployment-name, or its id."
#: Seconds between polls of a watched run.
WATCH_POLL_SECONDS = 1.0
#: Seconds a watched run may wait to start before ``--watch`` says why (seed-003).
DIAGNOSE_AFTER_SECONDS = 15.0
#: Seconds between two looks at why a run still waits.
DIAGNOSE_EVERY_SECONDS = 5.0
#: How long ``--watch`` goes on reading a finished run's log lines (its process reports the
#: final state first and ships its last lines just after), and how often meanwhile: it
#: stops at the first look that finds nothing new, or when the time is up.
LATE_LOGS_SECONDS = 3.0
LATE_LOGS_POLL_SECONDS = 0.3


def _read(client: Any, name: str) -> Any:
    """A deployment by ``flow/deployment`` name or id, or a one-line error."""
    from uuid import UUID

    from flowplane.exceptions import ObjectNotFound

    try:
        if "/" not in name:
            try:
                return client.read_deployment(UUID(name))
            except ValueError:
                fail(f"{name!r} is neither flow-name/deployment-name nor a deployment id.")
        return client.read_deployment_by_name(name)
    except ObjectNotFound:
        fail(f"Deployment {name!r} not found.")


def _schedule_text(schedule: Any) -> str:
    rule = schedule.schedule
    if hasattr(rule, "cron"):
        text = f"cron {rule.cron!r}"
    elif hasattr(rule, "rrule"):
        text = f"rrule {rule.rrule!r}"
    else:
        text = f"every {rule.interval}"
    zone = getattr(rule, "timezone", None)
    return f"{text}{f' ({zone})' if zone else ''}{'' if schedule.active else ' [inactive]'}"


@app.command("ls")
def ls(
    flow_name: Optional[List[str]] = typer.Option(
        None, "--flow-name", help="Only deployments of this flow (repeatable)."
    ),
    output: Optional[str] = output_option(),
) -> None:
    """List deployments."""
    as_json = wants_json(output)
    with api_client() as client:
        deployments = client.read_deployments(
            flow_filter={"name": {"any_": flow_name}} if flow_name else None
        )
        flow_ids = sorted({str(d.flow_id) for d in deployments})
        flows = client.read_flows(flow_filter={"id": {"any_": flow_ids}}) if flow_ids else []
    if as_json:
        print_json(deployments)
        return
    if not deployments:
        typer.echo("No deployments found.")
        return
    from rich.table import Table

    names = {f.id: f.name for f in flows}
    table = Table(title="Deployments")
    for column in ("Name", "ID", "Work Pool", "Schedules", "Status"):
        table.add_column(column, no_wrap=True)
    rows = sorted(deployments, key=lambda d: (names.get(d.flow_id, ""), d.name))
    for d in rows:
        table.add_row(
            f"{names.get(d.flow_id, d.flow_id)}/{d.name}",
            str(d.id),
            d.work_pool_name or "",
            ", ".join(_schedule_text(s) for s in d.schedules),
            "paused" if d.paused else (d.status.value if d.status else ""),
        )
    console().print(table)


@app.command()
def inspect(
    name: str = typer.Argument(..., help=NAME_HELP), output: Optional[str] = output_option()
) -> None:
    """Show everything about one deployment."""
    as_json = wants_json(output)
    with api_client() as client:
        deployment = _read(client, name)
    if as_json:
        print_json(deployment)
        return
    from rich.pretty import Pretty

    console().print(Pretty(deployment.model_dump(mode="json")))


def _set_paused(name: str, paused: bool) -> None:
    with api_client() as client:
        deployment = _read(client, name)
        if paused:
            client.pause_deployment(deployment.id)
        else:
            client.resume_deployment(deployment.id)
    typer.echo(f"{'Paused' if paused else 'Resumed'} deployment {name!r}.")


@app.command()
def pause(name: str = typer.Argument(..., help=NAME_HELP)) -> None:
    """Pause a deployment: its schedules make no runs until it is resumed."""
    _set_paused(name, True)


@app.command()
def resume(name: str = typer.Argument(..., help=NAME_HELP)) -> None:
    """Resume a paused deployment."""
    _set_paused(name, False)


@app.command()
def delete(
    name: str = typer.Argument(..., help=NAME_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a deployment (its past runs stay)."""
    with api_client() as client:
        deployment = _read(client, name)
        confirm_or_exit(f"Delete deployment {name!r}?", yes, required=True)
        client.delete_deployment(deployment.id)
    typer.echo(f"Deleted deployment {name!r}.")


@app.command()
def run(
    name: str = typer.Argument(..., help=NAME_HELP),
    param: Optional[List[str]] = typer.Option(
        None, "--param", help="A parameter as key=value (value parsed as JSON if it can be)."
    ),
    params: Optional[str] = typer.Option(None, "--params", help="Parameters as a JSON object."),
    job_variable: Optional[List[str]] = typer.Option(
        None, "--job-variable", "-jv", help="A job variable as key=value (repeatable)."
    ),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help="A tag for the run (repeatable)."),
    idempotency_key: Optional[str] = typer.Option(
        None, "--idempotency-key", help="Runs with the same key are created once."
    ),
    watch: bool = typer.Option(
        False, "--watch", help="Follow the run's states and logs until it ends."
    ),
    diagnose_after: float = typer.Option(
        DIAGNOSE_AFTER_SECONDS,
        "--diagnose-after",
        help="With --watch: seconds a run may wait (Scheduled/Pending) before saying why it waits.",
    ),
    output: Optional[str] = output_option(),
) -> None:
    """Create a run of a deployment; a worker of its pool picks it up."""
    from flowplane.cli.run import _parameters
    from flowplane.exceptions import ValidationFailed

    as_json = wants_json(output)
    parameters = _parameters(list(param or []), params)
    job_variables = _parameters(list(job_variable or []), None)
    with api_client() as client:
        deployment = _read(client, name)
        try:
            flow_run = client.create_flow_run_from_deployment(
                deployment.id,
                parameters=parameters,
                job_variables=job_variables or None,
                tags=tag or None,
                idempotency_key=idempotency_key,
            )
        except ValidationFailed as exc:
            fail(str(exc))
        if as_json and not watch:
            print_json(flow_run)
            return
        typer.echo(f"Created flow run {flow_run.name!r} ({flow_run.id}) of {name!r}.")
        if deployment.work_pool_name:
            typer.echo(f"It waits in work pool {deployment.work_pool_name!r} for a worker.")
        if watch:
            raise typer.Exit(_watch(client, flow_run, diagnose_after))


def _instant(text: str, option: str) -> Any:
    """An ISO 8601 time from the command line (naive means UTC), or a one-line error."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {text!r} is not an ISO 8601 time (like 2026-01-31T09:00:00+00:00).")
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


@app.command()
def backfill(
    name: str = typer.Argument(..., help=NAME_HELP),
    start: str = typer.Option(..., "--start", help="Window start, ISO 8601 (naive means UTC)."),
    end: str = typer.Option(..., "--end", help="Window end, ISO 8601, included."),
    max_runs: int = typer.Option(1000, "--max-runs", min=1, help="Most runs created per schedule."),
    output: Optional[str] = output_option(),
) -> None:
    """Create the runs a deployment's schedules call for between two times (past or future).

    Idempotent: a time that already has a run (from the scheduler or an earlier
    backfill) gets no second one. Runs for past times are late and start as soon as a
    worker of the deployment's pool picks them up.
    """
    from flowplane.exceptions import ValidationFailed

    first, last = _instant(start, "--start"), _instant(end, "--end")
    if last < first:
        fail("--end must not be before --start.")
    with api_client() as client:
        deployment = _read(client, name)
        try:
            counts = client.backfill_deployment(deployment.id, first, last, max_runs=max_runs)
        except ValidationFailed as exc:
            fail(str(exc))
    if wants_json(output):
        print_json(counts)
        return
    typer.echo(
        f"Backfilled {name!r} from {first.isoformat()} to {last.isoformat()}: "
        f"{counts['created']} run(s) created, {counts['existing']} already there."
    )


def _watch(client: Any, flow_run: Any, diagnose_after: float = DIAGNOSE_AFTER_SECONDS) -> int:
    """Print the run's state changes and log lines until it ends; 0 if it completed.

    A run still Scheduled or Pending ``diagnose_after`` seconds after the watch began gets
    one line saying why (paused pool or queue, no worker polling, a full concurrency
    limit), repeated only when the reason changes.
    """
    import time

    seen_state = None
    logs_seen = 0
    started = time.monotonic()
    next_diagnosis = started + diagnose_after
    said = None
    while True:
        current = client.read_flow_run(flow_run.id)
        logs = client.read_logs(
            log_filter={"flow_run_id": {"any_": [str(flow_run.id)]}}, offset=logs_seen, limit=200
        )
        _echo_logs(logs)
        logs_seen += len(logs)
        state = current.state
        if state is not None and (state.type, state.name) != seen_state:
            seen_state = (state.type, state.name)
            line = f"State: {state.name}{f' - {state.message}' if state.message else ''}"
            if state.type.value in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED"):
                _late_logs(client, flow_run.id, logs_seen)
                typer.echo(f"{line} ({ago(state.timestamp)})")
                return 0 if state.type.value == "COMPLETED" else 1
            typer.echo(f"{line} ({ago(state.timestamp)})")
        if time.monotonic() >= next_diagnosis:
            next_diagnosis = time.monotonic() + DIAGNOSE_EVERY_SECONDS
            reason = _why_waiting(client, current)
            if reason is not None and reason != said:
                typer.echo(f"Waiting: {reason}")
            said = reason
        time.sleep(WATCH_POLL_SECONDS)


def _echo_logs(logs: list[Any]) -> None:
    for line in logs:
        typer.echo(f"{line.timestamp:%H:%M:%S} | {line.message}")


def _late_logs(client: Any, flow_run_id: Any, logs_seen: int) -> None:
    """Print the log lines a finished run's process ships after its final state (see
    ``LATE_LOGS_SECONDS``)."""
    import time

    deadline = time.monotonic() + LATE_LOGS_SECONDS
    while time.monotonic() < deadline:
        time.sleep(LATE_LOGS_POLL_SECONDS)
        logs = client.read_logs(
            log_filter={"flow_run_id": {"any_": [str(flow_run_id)]}}, offset=logs_seen, limit=200
        )
        if not logs:
            return
        _echo_logs(logs)
        logs_seen += len(logs)


def _why_waiting(client: Any, flow_run: Any) -> str | None:
    """Why ``flow_run`` has not started, in one line, or ``None`` (a failed look says nothing)."""
    import datetime as dt

    from flowplane.deploy.diagnose import explain, gather
    from flowplane.exceptions import FlowplaneError

    try:
        facts = gather(client, flow_run)
    except FlowplaneError:
        return None
    if facts is None:
        return None
    return explain(facts, dt.datetime.now(dt.timezone.utc))
