"""``flowplane artifact``: list the latest artifact per key (or all), inspect a key's versions, delete."""

from __future__ import annotations

from typing import Any, Optional

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

app = typer.Typer(help="View and delete artifacts runs published.", no_args_is_help=True)


def _key_filter(key: str) -> dict[str, Any]:
    return {"key": {"any_": [key]}}


@app.command("ls")
def ls(
    limit: int = typer.Option(100, "--limit", min=1, max=200, help="Show at most this many."),
    all_: bool = typer.Option(
        False, "--all", "-a", help="Every artifact, not only the latest of each key."
    ),
    type_: Optional[str] = typer.Option(
        None, "--type", help="Only artifacts of this type (markdown, table, progress, image...)."
    ),
    output: Optional[str] = output_option(),
) -> None:
    """List the latest artifact of each key (with --all, every artifact), by key."""
    as_json = wants_json(output)
    flt = {"type": {"any_": [type_]}} if type_ else None
    with api_client() as client:
        if all_:
            rows: list[Any] = client.read_artifacts(
                artifact_filter=flt, sort="KEY_ASC", limit=limit
            )
        else:
            rows = client.read_latest_artifacts(artifact_filter=flt, sort="KEY_ASC", limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No artifacts found.")
        return
    from rich.table import Table

    table = Table(title="Artifacts")
    table.add_column("ID", style="cyan", no_wrap=True)
    table.add_column("Key", style="blue", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Flow run", no_wrap=True)
    table.add_column("Updated", no_wrap=True)
    for row in rows:
        table.add_row(
            str(row.id if all_ else row.latest_id),
            row.key or "",
            row.type or "",
            str(row.flow_run_id or ""),
            ago(row.updated),
        )
    console().print(table)


@app.command()
def inspect(
    key: str = typer.Argument(..., help="The artifacts' key."),
    limit: int = typer.Option(10, "--limit", min=1, max=200, help="Show at most this many."),
    output: Optional[str] = output_option(),
) -> None:
    """Show the artifacts with a key, newest first."""
    as_json = wants_json(output)
    with api_client() as client:
        rows = client.read_artifacts(
            artifact_filter=_key_filter(key), sort="UPDATED_DESC", limit=limit
        )
    if not rows:
        fail(f"Artifact {key!r} not found.")
    if as_json:
        print_json(rows)
        return
    from rich.pretty import Pretty

    console().print(Pretty([row.model_dump(mode="json") for row in rows]))


@app.command()
def delete(
    key: Optional[str] = typer.Argument(None, help="Delete every artifact with this key."),
    artifact_id: Optional[str] = typer.Option(
        None, "--id", help="Delete the artifact with this id."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete the artifacts with a key, or one artifact by --id."""
    from flowplane.exceptions import ObjectNotFound

    if (key is None) == (artifact_id is None):
        fail("Give a key or --id, not both.")
    with api_client() as client:
        if artifact_id is not None:
            ident = parse_id(artifact_id, "artifact")
            confirm_or_exit(f"Delete artifact {ident}?", yes)
            try:
                client.delete_artifact(ident)
            except ObjectNotFound:
                fail(f"Artifact {ident} not found.")
            typer.echo(f"Deleted artifact {ident}.")
            return
        assert key is not None
        ids: list[Any] = []
        while True:
            page = client.read_artifacts(
                artifact_filter=_key_filter(key), limit=200, offset=len(ids)
            )
            ids.extend(row.id for row in page)
            if len(page) < 200:
                break
        if not ids:
            fail(f"Artifact {key!r} not found (to delete one artifact, give --id).")
        confirm_or_exit(f"Delete {len(ids)} artifact(s) with key {key!r}?", yes)
        for ident in ids:
            client.delete_artifact(ident)
    typer.echo(f"Deleted {len(ids)} artifact(s) with key {key!r}.")
