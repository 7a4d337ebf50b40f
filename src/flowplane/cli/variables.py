"""``flowplane variable``: list, inspect, get, set and unset variables."""

from __future__ import annotations

import json
from typing import Any, List, Optional

import typer

from flowplane.cli._api import ago, api_client, confirm_or_exit, console, output_option, wants_json
from flowplane.cli.output import fail, print_json

app = typer.Typer(
    help="Manage variables: named JSON values flows and tasks share.", no_args_is_help=True
)


def parse_value(text: str) -> Any:
    """A value typed on the command line: JSON if it parses as JSON, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _read(client: Any, name: str) -> Any:
    variable = client.read_variable_by_name(name)
    if variable is None:
        fail(f"Variable {name!r} not found.")
    return variable


@app.command("ls")
def ls(
    limit: int = typer.Option(100, "--limit", min=1, max=200, help="Show at most this many."),
    name_like: Optional[str] = typer.Option(
        None, "--name", help="Only variables whose name contains this."
    ),
    tag: Optional[List[str]] = typer.Option(
        None, "--tag", help="Only variables with this tag (repeatable: all of them)."
    ),
    output: Optional[str] = output_option(),
) -> None:
    """List variables by name."""
    as_json = wants_json(output)
    flt: dict[str, Any] = {}
    if name_like:
        flt["name"] = {"like_": name_like}
    if tag:
        flt["tags"] = {"all_": tag}
    with api_client() as client:
        variables = client.read_variables(limit, variable_filter=flt or None)
    if as_json:
        print_json(variables)
        return
    if not variables:
        typer.echo("No variables found.")
        return
    from rich.table import Table

    table = Table(title="Variables")
    table.add_column("Name", style="blue", no_wrap=True)
    table.add_column("Value", no_wrap=True, max_width=60)
    table.add_column("Tags", style="green")
    table.add_column("Updated", no_wrap=True)
    for variable in variables:
        table.add_row(
            variable.name,
            json.dumps(variable.value),
            ", ".join(variable.tags),
            ago(variable.updated),
        )
    console().print(table)


@app.command()
def inspect(
    name: str = typer.Argument(..., help="The variable's name."),
    output: Optional[str] = output_option(),
) -> None:
    """Show everything about one variable."""
    as_json = wants_json(output)
    with api_client() as client:
        variable = _read(client, name)
    if as_json:
        print_json(variable)
        return
    from rich.pretty import Pretty

    console().print(Pretty(variable))


@app.command()
def get(name: str = typer.Argument(..., help="The variable's name.")) -> None:
    """Print a variable's value as JSON."""
    with api_client() as client:
        variable = _read(client, name)
    typer.echo(json.dumps(variable.value))


@app.command("set")
def set_(
    name: str = typer.Argument(..., help="The variable's name."),
    value: str = typer.Argument(
        ..., help="The value: JSON (42, true, '{\"a\": 1}') or plain text."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace it if it exists."),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help="A tag for it (repeatable)."),
) -> None:
    """Create a variable (or replace one with --overwrite)."""
    from pydantic import ValidationError

    with api_client() as client:
        try:
            client.set_variable(name, parse_value(value), tag or [], overwrite)
        except ValidationError as exc:
            fail(f"Invalid variable: {exc.errors()[0]['msg']}")
        except ValueError:
            fail(f"Variable {name!r} already exists. Use --overwrite to update it.")
    typer.echo(f"Set variable {name!r}.")


@app.command()
def unset(
    name: str = typer.Argument(..., help="The variable's name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a variable."""
    confirm_or_exit(f"Unset variable {name!r}?", yes)
    with api_client() as client:
        if not client.unset_variable(name):
            fail(f"Variable {name!r} not found.")
    typer.echo(f"Unset variable {name!r}.")


app.command("delete", help="Delete a variable (same as unset).")(unset)
