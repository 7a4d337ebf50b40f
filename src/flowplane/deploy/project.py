"""Project files: ``flowplane.yaml`` (or Prefect's ``prefect.yaml``) read by ``flowplane deploy``, written by ``flowplane init``.

The shape is Prefect's, so a ported project's file works as it is::

    name: my-project
    pull:                        # how a worker fetches the code (default for every deployment)
    - prefect.deployments.steps.git_clone:
        id: clone-step
        repository: https://github.com/me/my-project.git
        branch: main
    - prefect.deployments.steps.set_working_directory:
        directory: "{{ clone-step.directory }}"
    deployments:
    - name: nightly
      entrypoint: flows/etl.py:etl
      parameters: {day: today}
      tags: [etl]
      schedules:
      - cron: "0 3 * * *"
        timezone: Europe/Berlin
      - interval: 3600            # seconds
      work_pool:
        name: my-pool
        work_queue_name: default
        job_variables: {env: {MODE: prod}}
      pull: [...]                 # optional: this deployment's own pull steps

Step names may be Prefect's (``prefect.deployments.steps.git_clone``), flowplane's, or
bare (``git_clone``). ``build`` and ``push`` sections are ignored (flowplane builds no
images). Without pull steps anywhere, a deployment changes into the project's folder.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from flowplane.deploy.deployments import (
    STEP_PREFIX,
    RunnerDeployment,
    schedules_from,
    source_pull_steps,
)
from flowplane.exceptions import ConfigurationError

PROJECT_FILES = ("flowplane.yaml", "prefect.yaml")
_FLOW_DEF = re.compile(r"^@(?:\w+\.)?flow\b[^\n]*\n(?:@[^\n]*\n)*(?:async\s+)?def\s+(\w+)", re.M)


def find_project_file(folder: Path) -> Path | None:
    """``flowplane.yaml`` in ``folder``, else ``prefect.yaml``, else ``None``."""
    for name in PROJECT_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def load_project(path: Path) -> dict[str, Any]:
    """The project file's content.

    Raises:
        ConfigurationError: it is not valid YAML, or not a mapping with a ``deployments`` list.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path.name} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path.name} must be a mapping with a 'deployments' list")
    deployments = data.get("deployments") or []
    if not isinstance(deployments, list) or not all(isinstance(d, dict) for d in deployments):
        raise ConfigurationError(f"{path.name}: 'deployments' must be a list of mappings")
    data["deployments"] = deployments
    return data


def select(project: dict[str, Any], names: list[str], every: bool) -> list[dict[str, Any]]:
    """The deployments of the project to deploy: all, the named ones, or the only one.

    A name is ``deployment`` or ``flow-name/deployment`` (then matched on the deployment part).

    Raises:
        ConfigurationError: a name is unknown, or neither names nor ``--all`` choose among several.
    """
    specs: list[dict[str, Any]] = project["deployments"]
    if every:
        if not specs:
            raise ConfigurationError("The project file has no deployments")
        return specs
    if not names:
        if len(specs) == 1:
            return specs
        if not specs:
            raise ConfigurationError("The project file has no deployments")
        known = ", ".join(str(s.get("name")) for s in specs)
        raise ConfigurationError(f"Say which deployment to deploy (--name NAME or --all): {known}")
    chosen = []
    for name in names:
        short = name.rsplit("/", 1)[-1]
        match = [s for s in specs if s.get("name") == short]
        if not match:
            known = ", ".join(str(s.get("name")) for s in specs)
            raise ConfigurationError(
                f"No deployment {name!r} in the project file (it has: {known})"
            )
        chosen.extend(match)
    return chosen


def build(spec: dict[str, Any], project: dict[str, Any], root: Path) -> RunnerDeployment:
    """A project file's deployment entry as a :class:`RunnerDeployment` (its flow loaded for name and schema).

    Raises:
        ConfigurationError: a field is missing or malformed.
        EntrypointError: the flow cannot be loaded from the entrypoint.
    """
    from flowplane.sdk.entrypoints import load_flow_from_entrypoint

    name = spec.get("name")
    if not name or not isinstance(name, str):
        raise ConfigurationError("Every deployment in the project file needs a name")
    entrypoint = spec.get("entrypoint")
    if not entrypoint or ":" not in str(entrypoint):
        raise ConfigurationError(
            f"Deployment {name!r} needs an entrypoint like path/to/file.py:flow_function"
        )
    where, _, fn = str(entrypoint).rpartition(":")
    previous = os.getcwd()
    os.chdir(root)
    try:
        flow = load_flow_from_entrypoint(f"{root / where}:{fn}")
    finally:
        os.chdir(previous)
    pool = spec.get("work_pool") or {}
    if not isinstance(pool, dict):
        raise ConfigurationError(f"Deployment {name!r}: work_pool must be a mapping with a name")
    raw_schedules = spec.get("schedules") or []
    if spec.get("schedule"):
        raw_schedules = [*raw_schedules, spec["schedule"]]
    try:
        schedules = schedules_from(schedules=raw_schedules)
    except ValueError as exc:
        raise ConfigurationError(f"Deployment {name!r}: {exc}") from None
    pull = spec.get("pull", project.get("pull"))
    if not pull:
        pull = [{f"{STEP_PREFIX}set_working_directory": {"directory": str(root.resolve())}}]
    if not isinstance(pull, list):
        raise ConfigurationError(f"Deployment {name!r}: pull must be a list of steps")
    return RunnerDeployment(
        name=name,
        flow_name=flow.name,
        entrypoint=str(entrypoint),
        pull_steps=pull,
        schedules=schedules,
        parameters=dict(spec.get("parameters") or {}),
        parameter_openapi_schema=flow.parameters,
        enforce_parameter_schema=bool(spec.get("enforce_parameter_schema", True)),
        description=spec.get("description") or flow.description,
        version=spec.get("version") or flow.version,
        tags=list(spec.get("tags") or []),
        concurrency_limit=spec.get("concurrency_limit"),
        paused=bool(spec.get("paused", False)),
        work_pool_name=pool.get("name"),
        work_queue_name=pool.get("work_queue_name"),
        job_variables=dict(pool.get("job_variables") or {}),
    )


# --- init -----------------------------------------------------------------------------


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def git_origin(folder: Path) -> tuple[str, str | None] | None:
    """``(remote URL, branch)`` when ``folder`` is in a git checkout with a remote, else ``None``."""
    remote = _git(folder, "remote", "get-url", "origin")
    if remote is None:
        remotes = (_git(folder, "remote") or "").split()
        remote = _git(folder, "remote", "get-url", remotes[0]) if remotes else None
    if remote is None:
        return None
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    return remote, branch if branch and branch != "HEAD" else None


def find_flows(folder: Path) -> list[tuple[str, str]]:
    """``(relative file, function)`` for each ``@flow``-decorated function in the folder's Python files."""
    found = []
    skip = {".git", ".venv", "venv", "__pycache__", "node_modules", ".tox"}
    for path in sorted(folder.rglob("*.py")):
        if skip & set(path.relative_to(folder).parts):
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for match in _FLOW_DEF.finditer(text):
            found.append((path.relative_to(folder).as_posix(), match.group(1)))
    return found


def init_project(
    folder: Path, name: str | None = None, work_pool: str = "default", force: bool = False
) -> tuple[Path, dict[str, Any]]:
    """Write ``flowplane.yaml`` for ``folder``: pull steps (git clone of its remote, else a cd
    into it) and one deployment per ``@flow`` found; the file and its content.

    Raises:
        ConfigurationError: a project file exists already (and not ``force``).
    """
    import yaml

    existing = find_project_file(folder)
    if existing is not None and not force:
        raise ConfigurationError(f"{existing.name} exists already; use --force to replace it")
    origin = git_origin(folder)
    if origin is not None:
        pull = source_pull_steps(origin[0], origin[1])
    else:
        pull = source_pull_steps(str(folder.resolve()))
    deployments = [
        {
            "name": f"{function.replace('_', '-')}",
            "entrypoint": f"{file}:{function}",
            "parameters": {},
            "tags": [],
            "schedules": [],
            "work_pool": {"name": work_pool, "work_queue_name": None, "job_variables": {}},
        }
        for file, function in find_flows(folder)
    ]
    project = {
        "name": name or folder.resolve().name,
        "flowplane-version": _version(),
        "build": None,
        "push": None,
        "pull": pull,
        "deployments": deployments,
    }
    header = (
        "# flowplane project file: `flowplane deploy --all` registers these deployments.\n"
        '# Schedules: - cron: "0 3 * * *"  |  - interval: 3600  |  - rrule: "FREQ=DAILY"\n'
    )
    target = folder / "flowplane.yaml"
    target.write_text(header + yaml.safe_dump(project, sort_keys=False))
    return target, project


def _version() -> str:
    from flowplane import __version__

    return __version__


__all__ = [
    "PROJECT_FILES",
    "build",
    "find_flows",
    "find_project_file",
    "git_origin",
    "init_project",
    "load_project",
    "select",
]
