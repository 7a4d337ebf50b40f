"""The ``flowplane`` entry point: builds the Typer app from the command-group modules."""

from __future__ import annotations

import sys

import typer

from flowplane.cli import project as project_cli
from flowplane.cli import server as server_cli
from flowplane.cli.run import run as run_command

app = typer.Typer(
    name="flowplane",
    help="Workflow orchestration for Python (Prefect 3 compatible).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(server_cli.app, name="server")
app.command("run")(run_command)
app.command("init")(project_cli.init)
app.command("deploy")(project_cli.deploy)


@app.command()
def version(
    short: bool = typer.Option(False, "--short", help="Print only the version number."),
) -> None:
    """Show flowplane's version and where it keeps its data."""
    from flowplane import __version__
    from flowplane.settings import Settings

    if short:
        typer.echo(__version__)
        return
    settings = Settings.load()
    typer.echo(f"flowplane:       {__version__}")
    typer.echo("API compat:      Prefect 3 REST API")
    typer.echo(f"Python:          {sys.version.split()[0]}")
    typer.echo(f"home:            {settings.home}")
    typer.echo(f"API URL:         {settings.api_url or '(embedded)'}")
    typer.echo(f"database:        {settings.resolved_database_url}")


def _register_optional_groups() -> None:
    """Add command groups that live in their own modules (flow, flow-run, ...)."""
    import importlib

    for module_name, group in (
        ("flows", "flow"),
        ("flow_runs", "flow-run"),
        ("task_runs", "task-run"),
        ("config", "config"),
        ("profiles", "profile"),
        ("worker", "worker"),
        ("variables", "variable"),
        ("artifacts", "artifact"),
        ("cache", "cache"),
        ("deployments", "deployment"),
        ("work_pools", "work-pool"),
        ("work_queues", "work-queue"),
        ("concurrency_limits", "concurrency-limit"),
        ("global_concurrency_limits", "global-concurrency-limit"),
    ):
        try:
            module = importlib.import_module(f"flowplane.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"flowplane.cli.{module_name}":
                raise
            continue
        app.add_typer(module.app, name=group)


_register_optional_groups()


def main() -> None:
    """Console-script entry point: run the app, turning flowplane and settings errors into one line."""
    from pydantic import ValidationError

    from flowplane.exceptions import FlowplaneError

    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        typer.secho("Aborted.", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except FlowplaneError as exc:
        typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        typer.secho(f"Error: invalid setting: {problems}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except Exception as exc:
        # Usage errors (bad option value, unknown command) in one line, like every other
        # error: Click's default is a multi-line box.
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        typer.secho(f"Error: {exc.format_message()}{hint}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
