"""``flowplane concurrency-limit``: task-run tag concurrency limits (create, ls, inspect, reset, delete)."""

from __future__ import annotations

from typing import Any, Optional

import typer

from flowplane.cli._api import ago, api_client, console, output_option, wants_json
from flowplane.cli.output import fail, print_json

app = typer.Typer(
    help="Manage task-run concurrency limits by tag (a tagged task waits for a free slot).",
    no_args_is_help=True,
)


def _read(client: Any, tag: str) -> Any:
    from flowplane.exceptions import ObjectNotFound

    try:
        return client.read_concurrency_limit_by_tag(tag)
    except ObjectNotFound:
        fail(f"No concurrency limit found for the tag {tag!r}.")


@app.command()
def create(
    tag: str = typer.Argument(..., help="The tag whose task runs are limited."),
    concurrency_limit: int = typer.Argument(
        ..., help="How many task runs with the tag may run at once."
    ),
) -> None:
    """Create the tag's concurrency limit, or change the limit of the existing one."""
    if concurrency_limit < 0:
        fail(f"The concurrency limit must be 0 or more (got {concurrency_limit}).")
    with api_client() as client:
        limit_id = client.create_concurrency_limit(tag, concurrency_limit)
    typer.echo(
        f"Created concurrency limit with properties:\n"
        f"    tag - {tag!r}\n    concurrency_limit - {concurrency_limit}\n"
        f"Delete the concurrency limit:\n    flowplane concurrency-limit delete {tag!r}\n"
        f"Inspect it:\n    flowplane concurrency-limit inspect {tag!r}\n"
        f"(id {limit_id})"
    )


@app.command("ls")
def ls(
    limit: int = typer.Option(15, "--limit", min=1, max=200, help="Show at most this many."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many first."),
    output: Optional[str] = output_option(),
) -> None:
    """List the tag concurrency limits, ordered by tag."""
    as_json = wants_json(output)
    with api_client() as client:
        limits = client.read_concurrency_limits(limit=limit, offset=offset)
    if as_json:
        print_json(limits)
        return
    if not limits:
        typer.echo("No concurrency limits found.")
        return
    from rich.table import Table

    table = Table(title="Concurrency Limits")
    table.add_column("Tag", style="green", no_wrap=True)
    table.add_column("ID", style="cyan", no_wrap=True)
    table.add_column("Concurrency Limit", style="blue", no_wrap=True)
    table.add_column("Active Task Runs", style="magenta", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    for row in limits:
        table.add_row(
            row.tag,
            str(row.id),
            str(row.concurrency_limit),
            str(len(row.active_slots)),
            ago(row.created),
        )
    console().print(table)


@app.command()
def inspect(
    tag: str = typer.Argument(..., help="The tag."),
    output: Optional[str] = output_option(),
) -> None:
    """Show a tag's limit and the task runs holding its slots."""
    as_json = wants_json(output)
    with api_client() as client:
        row = _read(client, tag)
    if as_json:
        print_json(row)
        return
    lines = [
        f"tag:               {row.tag}",
        f"id:                {row.id}",
        f"concurrency limit: {row.concurrency_limit}",
        f"created:           {ago(row.created)}",
        f"updated:           {ago(row.updated)}",
        f"active task runs:  {len(row.active_slots)}",
    ]
    lines += [f"    {task_run_id}" for task_run_id in row.active_slots]
    typer.echo("\n".join(lines))


@app.command()
def reset(tag: str = typer.Argument(..., help="The tag.")) -> None:
    """Free every slot of the tag's limit (task runs holding them keep running)."""
    from flowplane.exceptions import ObjectNotFound

    with api_client() as client:
        try:
            client.reset_concurrency_limit_by_tag(tag)
        except ObjectNotFound:
            fail(f"No concurrency limit found for the tag {tag!r}.")
    typer.echo(f"Reset concurrency limit set on the tag: {tag}")


@app.command()
def delete(tag: str = typer.Argument(..., help="The tag.")) -> None:
    """Delete the tag's concurrency limit."""
    from flowplane.exceptions import ObjectNotFound

    with api_client() as client:
        try:
            client.delete_concurrency_limit_by_tag(tag)
        except ObjectNotFound:
            fail(f"No concurrency limit found for the tag {tag!r}.")
    typer.echo(f"Deleted concurrency limit set on the tag: {tag}")
