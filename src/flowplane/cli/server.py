"""``flowplane server``: start the API server, manage its database."""

from __future__ import annotations

import typer

app = typer.Typer(help="Start the server and manage its database.", no_args_is_help=True)


@app.command()
def start(
    host: str = typer.Option(
        None, "--host", help="Address to bind (default: FLOWPLANE_SERVER_HOST or 127.0.0.1)."
    ),
    port: int = typer.Option(
        None, "--port", help="Port to bind (default: FLOWPLANE_SERVER_PORT or 4200)."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn's log level."),
) -> None:
    """Serve the API (and its database, migrated on start) until interrupted."""
    import uvicorn

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    settings = Settings.load()
    overrides: dict[str, object] = {}
    if host:
        overrides["server_host"] = host
    if port:
        overrides["server_port"] = port
    settings = settings.model_copy(update=overrides)
    url = f"http://{settings.server_host}:{settings.server_port}"
    typer.echo(f"flowplane server on {url}  (API {url}/api, docs {url}/docs)")
    typer.echo(f"database: {settings.resolved_database_url}")
    uvicorn.run(
        create_app(settings),
        host=settings.server_host,
        port=settings.server_port,
        log_level=log_level,
        lifespan="on",
        ws="websockets-sansio",
    )


database_app = typer.Typer(
    help="Upgrade, downgrade or reset the database schema.", no_args_is_help=True
)
app.add_typer(database_app, name="database")


def _run_migration(action: str, revision: str | None = None) -> str:
    """Run ``action`` (upgrade, downgrade, reset) on the configured database; return the URL."""
    import asyncio

    from flowplane.cli._api import load_settings, one_line_errors

    settings = load_settings()

    async def run() -> None:
        from flowplane.server.db import migrate
        from flowplane.server.db.session import create_engine

        engine = create_engine(settings.resolved_database_url, timeout=settings.database_timeout)
        try:
            if action == "upgrade":
                await migrate.upgrade(engine, revision or "head")
            elif action == "downgrade":
                await migrate.downgrade(engine, revision or "-1")
            else:
                await migrate.reset(engine)
        finally:
            await engine.dispose()

    from flowplane.cli.output import fail

    with one_line_errors():
        try:
            asyncio.run(run())
        except Exception as exc:  # a migration error is a message for the operator, not a traceback
            fail(f"Database {action} failed on {settings.resolved_database_url}: {exc}")
    return settings.resolved_database_url


@database_app.command()
def upgrade(
    revision: str = typer.Option(
        "head", "--revision", "-r", help="Alembic revision to upgrade to."
    ),
) -> None:
    """Bring the database schema up to date (the server also does this on start)."""
    url = _run_migration("upgrade", revision)
    typer.echo(f"Upgraded the database to {revision}: {url}")


@database_app.command()
def downgrade(
    revision: str = typer.Option(
        "-1", "--revision", "-r", help="Alembic revision to downgrade to ('base' drops everything)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Take the database schema down (data in dropped tables is lost)."""
    from flowplane.cli._api import confirm_or_exit, load_settings

    url = load_settings().resolved_database_url
    confirm_or_exit(
        f"Downgrade the database at {url} to {revision}? Data may be lost.", yes, required=True
    )
    _run_migration("downgrade", revision)
    typer.echo(f"Downgraded the database to {revision}: {url}")


@database_app.command()
def reset(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Drop every table and recreate the schema: all data is lost."""
    from flowplane.cli._api import confirm_or_exit, load_settings

    url = load_settings().resolved_database_url
    confirm_or_exit(f"Reset the database at {url}? All data will be lost.", yes, required=True)
    _run_migration("reset")
    typer.echo(f"Reset the database: {url}")
