"""``flowplane global-concurrency-limit``: named global limits and rate limits (create, ls, inspect, update, enable, disable, delete)."""

from __future__ import annotations

from typing import Any, Optional

import typer

from flowplane.cli._api import ago, api_client, console, output_option, wants_json
from flowplane.cli.output import fail, print_json

app = typer.Typer(
    help="Manage global concurrency limits and rate limits (used by concurrency() and rate_limit()).",
    no_args_is_help=True,
)


def _read(client: Any, name: str) -> Any:
    from flowplane.exceptions import ObjectNotFound

    try:
        return client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        fail(f"Global concurrency limit {name!r} not found.")


def _update(name: str, changes: dict[str, Any], done: str) -> None:
    from flowplane.exceptions import ObjectNotFound, ValidationFailed

    with api_client() as client:
        try:
            client.update_global_concurrency_limit(name, changes)
        except ObjectNotFound:
            fail(f"Global concurrency limit {name!r} not found.")
        except ValidationFailed as exc:
            fail(f"Invalid update of global concurrency limit {name!r}: {_problem(exc)}")
    typer.echo(done)


def _problem(exc: Any) -> str:
    detail = exc.detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return "; ".join(str(d.get("msg", d)) for d in detail)
    return str(detail)


@app.command()
def create(
    name: str = typer.Argument(..., help="The limit's name (used in concurrency(name))."),
    limit: int = typer.Option(..., "--limit", "-l", min=0, help="How many slots it has."),
    disable: bool = typer.Option(False, "--disable", help="Create it inactive (limits nothing)."),
    active_slots: int = typer.Option(0, "--active-slots", min=0, help="Slots taken to start with."),
    slot_decay_per_second: float = typer.Option(
        0.0,
        "--slot-decay-per-second",
        min=0.0,
        help="Slots freed per second (a rate limit); 0 for a plain concurrency limit.",
    ),
) -> None:
    """Create a global concurrency limit."""
    from flowplane.exceptions import ObjectAlreadyExists, ValidationFailed

    if active_slots > limit:
        fail(f"--active-slots ({active_slots}) cannot exceed --limit ({limit}).")
    with api_client() as client:
        try:
            limit_id = client.create_global_concurrency_limit(
                {
                    "name": name,
                    "limit": limit,
                    "active": not disable,
                    "active_slots": active_slots,
                    "slot_decay_per_second": slot_decay_per_second,
                }
            )
        except ObjectAlreadyExists:
            fail(f"Global concurrency limit {name!r} already exists.")
        except ValidationFailed as exc:
            fail(f"Invalid global concurrency limit: {_problem(exc)}")
    typer.echo(f"Created global concurrency limit with name {name!r} and ID '{limit_id}'.")


@app.command("ls")
def ls(output: Optional[str] = output_option()) -> None:
    """List the global concurrency limits (tag limits show as ``tag:<tag>``)."""
    as_json = wants_json(output)
    with api_client() as client:
        limits = client.read_global_concurrency_limits(limit=200, offset=0)
    if as_json:
        print_json(limits)
        return
    if not limits:
        typer.echo("No global concurrency limits found.")
        return
    from rich.table import Table

    table = Table(title="Global Concurrency Limits")
    table.add_column("ID", style="cyan", no_wrap=True)
    table.add_column("Name", style="green", no_wrap=True)
    table.add_column("Active", style="blue", no_wrap=True)
    table.add_column("Limit", no_wrap=True)
    table.add_column("Active Slots", no_wrap=True)
    table.add_column("Slot Decay Per Second", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    table.add_column("Updated", no_wrap=True)
    for row in limits:
        table.add_row(
            str(row.id),
            row.name,
            str(row.active),
            str(row.limit),
            str(row.active_slots),
            f"{row.slot_decay_per_second:g}",
            ago(row.created),
            ago(row.updated),
        )
    console().print(table)


@app.command()
def inspect(
    name: str = typer.Argument(..., help="The limit's name (or id)."),
    output: Optional[str] = output_option(),
    file: Optional[str] = typer.Option(
        None, "--file", "-f", help="Write the limit as JSON to this file."
    ),
) -> None:
    """Show one global concurrency limit."""
    as_json = wants_json(output)
    with api_client() as client:
        row = _read(client, name)
    if file is not None:
        import pathlib

        pathlib.Path(file).write_text(row.model_dump_json(indent=2) + "\n")
        typer.echo(f"Global concurrency limit {name!r} written to {file}")
        return
    if as_json:
        print_json(row)
        return
    typer.echo(
        "\n".join(
            [
                f"name:                  {row.name}",
                f"id:                    {row.id}",
                f"active:                {row.active}",
                f"limit:                 {row.limit}",
                f"active slots:          {row.active_slots}",
                f"slot decay per second: {row.slot_decay_per_second:g}",
                f"created:               {ago(row.created)}",
                f"updated:               {ago(row.updated)}",
            ]
        )
    )


@app.command()
def update(
    name: str = typer.Argument(..., help="The limit's name (or id)."),
    enable: bool = typer.Option(False, "--enable", help="Make it active."),
    disable: bool = typer.Option(False, "--disable", help="Make it inactive (limits nothing)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-l", min=0, help="New number of slots."),
    active_slots: Optional[int] = typer.Option(
        None, "--active-slots", min=0, help="Set the slots taken."
    ),
    slot_decay_per_second: Optional[float] = typer.Option(
        None, "--slot-decay-per-second", min=0.0, help="New decay rate (slots per second)."
    ),
) -> None:
    """Change a global concurrency limit; options left out stay as they are."""
    if enable and disable:
        fail("Cannot enable and disable a global concurrency limit at the same time.")
    changes: dict[str, Any] = {}
    if enable or disable:
        changes["active"] = enable
    if limit is not None:
        changes["limit"] = limit
    if active_slots is not None:
        changes["active_slots"] = active_slots
    if slot_decay_per_second is not None:
        changes["slot_decay_per_second"] = slot_decay_per_second
    if not changes:
        fail("No update arguments provided.")
    _update(name, changes, f"Updated global concurrency limit with name {name!r}.")


@app.command()
def enable(name: str = typer.Argument(..., help="The limit's name (or id).")) -> None:
    """Make a global concurrency limit active."""
    _update(name, {"active": True}, f"Enabled global concurrency limit with name {name!r}.")


@app.command()
def disable(name: str = typer.Argument(..., help="The limit's name (or id).")) -> None:
    """Make a global concurrency limit inactive: it limits nothing until enabled."""
    _update(name, {"active": False}, f"Disabled global concurrency limit with name {name!r}.")


@app.command()
def delete(
    name: str = typer.Argument(..., help="The limit's name (or id)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a global concurrency limit."""
    from flowplane.cli._api import confirm_or_exit
    from flowplane.exceptions import ObjectNotFound

    confirm_or_exit(f"Delete global concurrency limit {name!r}?", yes)
    with api_client() as client:
        try:
            client.delete_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            fail(f"Global concurrency limit {name!r} not found.")
    typer.echo(f"Deleted global concurrency limit with name {name!r}.")
