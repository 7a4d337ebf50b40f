"""``flowplane flow``: list the flows the API knows."""

from __future__ import annotations

from typing import Optional

import typer

from flowplane.cli._api import ago, api_client, console, output_option, wants_json
from flowplane.cli.output import print_json

app = typer.Typer(help="View flows.", no_args_is_help=True)


@app.command("ls")
def ls(
    limit: int = typer.Option(15, "--limit", min=1, max=200, help="Show at most this many flows."),
    output: Optional[str] = output_option(),
) -> None:
    """List flows, newest first."""
    as_json = wants_json(output)
    with api_client() as client:
        flows = client.read_flows(limit=limit, sort="CREATED_DESC")
    if as_json:
        print_json(flows)
        return
    if not flows:
        typer.echo("No flows found.")
        return
    from rich.table import Table

    table = Table(title="Flows")
    table.add_column("ID", style="cyan", no_wrap=True)
    table.add_column("Name", style="green", no_wrap=True)
    table.add_column("Tags", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    for flow in flows:
        table.add_row(str(flow.id), flow.name, ", ".join(flow.tags), ago(flow.created))
    console().print(table)
