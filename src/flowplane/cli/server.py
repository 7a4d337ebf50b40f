"""``flowplane server``: start the API server, manage its database."""

from __future__ import annotations

import typer

app = typer.Typer(help="Start the server and manage its database.", no_args_is_help=True)


@app.command()
def start(
    host: str = typer.Option(None, "--host", help="Address to bind (default: FLOWPLANE_SERVER_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port to bind (default: FLOWPLANE_SERVER_PORT or 4200)."),
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
