"""``flowplane cache``: list and clear task cache records in a result storage."""

from __future__ import annotations

from typing import Optional

import typer

from flowplane.cli._api import ago, console, output_option, wants_json
from flowplane.cli.output import fail, print_json

app = typer.Typer(help="List and clear cached task results.", no_args_is_help=True)

STORAGE_HELP = "Result storage: a folder or fsspec URL (default: the configured result storage)."


def _row(record: object) -> dict[str, object]:
    from flowplane.sdk.results import ResultRecordMetadata

    assert isinstance(record, ResultRecordMetadata)
    data = record.to_dict()
    return {
        "key": data["storage_key"],
        "task": data["task_name"],
        "created": data["created"],
        "expiration": data["expiration"],
        "expired": record.is_expired(),
        "serializer": data["serializer"]["type"],
        "storage": data["storage"],
    }


@app.command("ls")
def ls(
    task: Optional[str] = typer.Option(None, "--task", help="Only records of this task (name)."),
    storage: Optional[str] = typer.Option(None, "--storage", help=STORAGE_HELP),
    output: Optional[str] = output_option(),
) -> None:
    """List cache records, newest first."""
    from flowplane.sdk.results import list_cache_records

    as_json = wants_json(output)
    try:
        records = list_cache_records(storage=storage, task=task)
    except (OSError, ValueError) as exc:
        fail(f"Cannot read result storage: {exc}")
    rows = [_row(r) for r in records]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No cache records found.")
        return
    from rich.table import Table

    table = Table(title="Cache records")
    table.add_column("Key", style="cyan", no_wrap=True)
    table.add_column("Task", style="blue", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    table.add_column("Expires", no_wrap=True)
    table.add_column("Serializer", no_wrap=True)
    for record, row in zip(records, rows, strict=True):
        if record.expiration is None:
            expires = "never"
        elif row["expired"]:
            expires = f"expired {ago(record.expiration)}"
        else:
            expires = ago(record.expiration)
        table.add_row(
            str(row["key"]),
            str(row["task"] or ""),
            ago(record.created),
            expires,
            str(row["serializer"]),
        )
    console().print(table)


@app.command()
def clear(
    task: Optional[str] = typer.Option(None, "--task", help="Only records of this task (name)."),
    key: Optional[str] = typer.Option(None, "--key", help="Only the record with this key."),
    storage: Optional[str] = typer.Option(None, "--storage", help=STORAGE_HELP),
) -> None:
    """Delete cache records (all of them, or those of one task or key), so those tasks run again."""
    from flowplane.sdk.results import clear_cache

    try:
        deleted = clear_cache(storage=storage, task=task, key=key)
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"Cannot clear result storage: {exc}")
    typer.echo(f"Deleted {len(deleted)} cache record(s).")
