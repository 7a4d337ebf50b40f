"""``flowplane init`` and ``flowplane deploy``: write a project file, and register its deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from flowplane.cli._api import api_client, one_line_errors, output_option, wants_json
from flowplane.cli.output import fail, print_json


def init(
    name: Optional[str] = typer.Option(
        None, "--name", help="The project's name (default: the folder's)."
    ),
    pool: str = typer.Option(
        "default", "--pool", "-p", help="The work pool the deployments go to."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing project file."),
) -> None:
    """Write flowplane.yaml for this folder: how workers fetch the code, and a deployment per flow."""
    from flowplane.deploy.project import init_project

    with one_line_errors():
        path, project = init_project(Path.cwd(), name, pool, force)
    step = next(iter(project["pull"][0]))
    how = "clone its git remote" if step.endswith("git_clone") else "use this folder"
    typer.echo(f"Wrote {path.name}: workers {how} before running a flow.")
    found = project["deployments"]
    if found:
        typer.echo(f"Deployments for {len(found)} flow(s): {', '.join(d['name'] for d in found)}.")
    else:
        typer.echo("No @flow functions found; add deployments to the file by hand.")
    typer.echo("Edit schedules and work pools there, then run: flowplane deploy --all")


def deploy(
    entrypoint: Optional[str] = typer.Argument(
        None, help="path/to/file.py:flow_function, when not (only) using the project file."
    ),
    name: Optional[List[str]] = typer.Option(
        None,
        "--name",
        "-n",
        help="The deployment (repeatable; in the file, or the new one's name).",
    ),
    all_: bool = typer.Option(False, "--all", help="Deploy every deployment in the project file."),
    pool: Optional[str] = typer.Option(
        None, "--pool", "-p", help="The work pool (overrides the file)."
    ),
    work_queue: Optional[str] = typer.Option(None, "--work-queue", "-q", help="The pool's queue."),
    cron: Optional[List[str]] = typer.Option(None, "--cron", help="A cron schedule (repeatable)."),
    interval: Optional[List[float]] = typer.Option(
        None, "--interval", help="An interval schedule in seconds (repeatable)."
    ),
    rrule: Optional[List[str]] = typer.Option(
        None, "--rrule", help="An RRule schedule (repeatable)."
    ),
    timezone: Optional[str] = typer.Option(None, "--timezone", help="The schedules' time zone."),
    param: Optional[List[str]] = typer.Option(
        None, "--param", help="A default parameter key=value."
    ),
    job_variable: Optional[List[str]] = typer.Option(
        None, "--job-variable", "-jv", help="A job variable key=value (repeatable)."
    ),
    tag: Optional[List[str]] = typer.Option(None, "--tag", help="A tag (repeatable)."),
    file: Optional[Path] = typer.Option(
        None,
        "--file",
        "--prefect-file",
        help="The project file (default: ./flowplane.yaml or ./prefect.yaml).",
    ),
    output: Optional[str] = output_option(),
) -> None:
    """Register deployments from flowplane.yaml (or prefect.yaml), or one from ENTRYPOINT and options."""
    from flowplane.deploy.project import build, find_project_file, load_project, select
    from flowplane.exceptions import ObjectNotFound

    as_json = wants_json(output)
    root = Path.cwd()
    path = file if file is not None else find_project_file(root)
    if file is not None and not file.is_file():
        fail(f"No project file {file}.")
    with one_line_errors():
        project: dict[str, Any] = load_project(path) if path is not None else {"deployments": []}
        if path is not None:
            root = path.resolve().parent
        if entrypoint is not None:
            names = [n.rsplit("/", 1)[-1] for n in name or []]
            if len(names) != 1:
                fail("Give the new deployment one --name.")
            listed = [s for s in project["deployments"] if s.get("name") == names[0]]
            specs = [{**(listed[0] if listed else {}), "name": names[0], "entrypoint": entrypoint}]
        elif path is None:
            fail(
                "No flowplane.yaml or prefect.yaml here; run `flowplane init`, or give an ENTRYPOINT."
            )
        else:
            specs = select(project, list(name or []), all_)
        specs = [
            _override(
                s, pool, work_queue, cron, interval, rrule, timezone, param, job_variable, tag
            )
            for s in specs
        ]
        deployments = [build(spec, project, root) for spec in specs]
    created = []
    with api_client() as client:
        for deployment in deployments:
            try:
                deployment_id = deployment.apply(client)
            except ObjectNotFound:
                fail(
                    f"Work pool {deployment.work_pool_name!r} does not exist; create it with "
                    f"`flowplane work-pool create {deployment.work_pool_name} --type process`."
                )
            created.append(client.read_deployment(deployment_id))
            if not as_json:
                where = (
                    f" in work pool {deployment.work_pool_name!r}"
                    if deployment.work_pool_name
                    else " (no work pool: serve it, or run it with a worker after adding one)"
                )
                typer.echo(f"Deployed {deployment.full_name!r} ({deployment_id}){where}.")
    if as_json:
        print_json(created)
        return
    pools = sorted({d.work_pool_name for d in deployments if d.work_pool_name})
    for pool_name in pools:
        typer.echo(f"Start a worker: flowplane worker start --pool {pool_name}")
    if deployments:
        typer.echo(f"Run one now:    flowplane deployment run {deployments[0].full_name!r} --watch")


def _override(
    spec: dict[str, Any],
    pool: str | None,
    work_queue: str | None,
    cron: list[str] | None,
    interval: list[float] | None,
    rrule: list[str] | None,
    timezone: str | None,
    param: list[str] | None,
    job_variable: list[str] | None,
    tag: list[str] | None,
) -> dict[str, Any]:
    """``spec`` with the command line's options laid over it."""
    from flowplane.cli.run import _parameters

    spec = dict(spec)
    work_pool = dict(spec.get("work_pool") or {})
    if pool:
        work_pool["name"] = pool
    if work_queue:
        work_pool["work_queue_name"] = work_queue
    if job_variable:
        work_pool["job_variables"] = {
            **(work_pool.get("job_variables") or {}),
            **_parameters(list(job_variable), None),
        }
    spec["work_pool"] = work_pool
    added: list[dict[str, Any]] = [
        *({"cron": c} for c in cron or []),
        *({"interval": i} for i in interval or []),
        *({"rrule": r} for r in rrule or []),
    ]
    if added:
        spec["schedules"] = [{**s, "timezone": timezone} if timezone else s for s in added]
    if param:
        spec["parameters"] = {**(spec.get("parameters") or {}), **_parameters(list(param), None)}
    if tag:
        spec["tags"] = [*(spec.get("tags") or []), *tag]
    return spec
