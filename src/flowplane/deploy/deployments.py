"""Deployments from Python: ``to_deployment``, ``deploy``, ``from_source`` and the schedules they carry.

A :class:`RunnerDeployment` is a deployment described in the process before it is
registered: which flow (name and entrypoint), where its code is (a ``path`` for served
deployments, pull steps for worker-run ones), schedules, parameters and so on.
:meth:`RunnerDeployment.apply` creates it (or updates the flow's deployment of that
name). ``Flow.to_deployment``/``Flow.deploy``/``Flow.from_source`` are thin methods
over the free functions here.
"""

from __future__ import annotations

import atexit
import datetime as dt
import inspect
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flowplane.exceptions import EntrypointError

if TYPE_CHECKING:
    from flowplane.sdk.flows import Flow

#: Where ``from_source`` keeps what it knows about a flow's code (flows are frozen).
SOURCE_ATTRIBUTE = "_flowplane_source"
STEP_PREFIX = "prefect.deployments.steps."


@dataclass(frozen=True)
class FlowSource:
    """Where a flow loaded by :func:`from_source` lives: its entrypoint there and the pull steps that fetch it."""

    source: str
    entrypoint: str
    pull_steps: list[dict[str, Any]]


@dataclass
class RunnerDeployment:
    """A deployment described in this process, registered with :meth:`apply`."""

    name: str
    flow_name: str
    entrypoint: str | None = None
    path: str | None = None
    pull_steps: list[dict[str, Any]] | None = None
    schedules: list[dict[str, Any]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    parameter_openapi_schema: dict[str, Any] | None = None
    enforce_parameter_schema: bool = True
    description: str | None = None
    version: str | None = None
    tags: list[str] = field(default_factory=list)
    concurrency_limit: int | None = None
    #: Unset means not paused (as Prefect): re-serving a deployment paused on shutdown resumes it.
    paused: bool = False
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"

    def apply(self, client: Any = None) -> UUID:
        """Create this deployment, or update the flow's deployment of this name; its id.

        Raises:
            ObjectNotFound: the work pool named does not exist.
            ValidationFailed: a schedule or the parameters are invalid.
        """
        if client is None:
            from flowplane.client import get_client

            with get_client(sync_client=True) as own:
                return self.apply(own)
        flow_id = client.create_flow_from_name(self.flow_name)
        deployment_id: UUID = client.create_deployment(
            flow_id,
            self.name,
            version=self.version,
            schedules=self.schedules,
            concurrency_limit=self.concurrency_limit,
            parameters=self.parameters,
            description=self.description,
            work_queue_name=self.work_queue_name,
            work_pool_name=self.work_pool_name,
            tags=self.tags,
            path=self.path,
            entrypoint=self.entrypoint,
            parameter_openapi_schema=self.parameter_openapi_schema,
            paused=self.paused,
            pull_steps=self.pull_steps,
            enforce_parameter_schema=self.enforce_parameter_schema,
            job_variables=self.job_variables or None,
        )
        return deployment_id


# --- schedules -------------------------------------------------------------------------


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _seconds(value: Any) -> float:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ValueError(f"An interval is a positive number of seconds or a timedelta, not {value!r}")


def schedule_create(item: Any, timezone: str | None = None) -> dict[str, Any]:
    """One schedule as the API creates it, from a schedule model, a dict, or a create model.

    Dicts may be flat (``{"cron": "0 * * * *", "timezone": "UTC", "active": true}``, as
    ``flowplane.yaml`` writes them) or nested (``{"schedule": {...}, "active": ...}``).
    """
    if hasattr(item, "model_dump"):
        item = item.model_dump(mode="json", exclude_none=True)
    if not isinstance(item, dict):
        raise ValueError(f"Not a schedule: {item!r}")
    if "schedule" in item:
        return dict(item)
    rule = dict(item)
    outer = {
        k: rule.pop(k) for k in ("active", "parameters", "slug", "max_scheduled_runs") if k in rule
    }
    if "interval" in rule:
        rule["interval"] = _seconds(rule["interval"])
    if not {"cron", "interval", "rrule"} & set(rule):
        raise ValueError(f"A schedule needs a cron, interval or rrule: {item!r}")
    if timezone and not rule.get("timezone"):
        rule["timezone"] = timezone
    rule = {k: v for k, v in rule.items() if v is not None}
    return {"schedule": rule, "active": outer.pop("active", True), **outer}


def schedules_from(
    cron: str | Iterable[str] | None = None,
    interval: Any = None,
    rrule: str | Iterable[str] | None = None,
    schedules: Sequence[Any] | None = None,
    schedule: Any = None,
    timezone: str | None = None,
) -> list[dict[str, Any]]:
    """The schedules a ``serve``/``deploy`` call asks for (``cron``/``interval``/``rrule`` may be lists).

    Raises:
        ValueError: ``schedules`` combined with ``cron``/``interval``/``rrule``, or a bad value.
    """
    shortcuts = [
        *({"cron": c} for c in _listify(cron)),
        *({"interval": _seconds(i)} for i in _listify(interval)),
        *({"rrule": r} for r in _listify(rrule)),
    ]
    explicit = [*_listify(schedule), *_listify(schedules)]
    if shortcuts and explicit:
        raise ValueError("Give either schedules= or cron/interval/rrule, not both")
    return [schedule_create(item, timezone) for item in (*shortcuts, *explicit)]


# --- where a flow's code is ------------------------------------------------------------


def flow_location(flow: Flow[Any, Any], root: str | None = None) -> tuple[str, str]:
    """``(path, entrypoint)`` for a flow defined in a file: the folder to run in and ``file.py:fn`` in it.

    The entrypoint is relative to ``root`` (default: the working directory) when the file
    is under it, else relative to the file's own folder.

    Raises:
        EntrypointError: the flow was not defined in a file (an interactive session).
    """
    try:
        file = inspect.getsourcefile(flow.fn)
    except TypeError:
        file = None
    if not file or not os.path.isfile(file):
        raise EntrypointError(
            f"Flow {flow.name!r} was not defined in a file; deployments need an importable entrypoint"
        )
    file = os.path.abspath(file)
    base = os.path.abspath(root or os.getcwd())
    if not file.startswith(base + os.sep):
        base = os.path.dirname(file)
    relative = os.path.relpath(file, base)
    return base, f"{relative}:{flow.fn.__name__}"


def to_deployment(
    flow: Flow[Any, Any],
    name: str,
    *,
    cron: str | Iterable[str] | None = None,
    interval: Any = None,
    rrule: str | Iterable[str] | None = None,
    schedules: Sequence[Any] | None = None,
    schedule: Any = None,
    timezone: str | None = None,
    paused: bool | None = None,
    parameters: dict[str, Any] | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    version: str | None = None,
    concurrency_limit: int | None = None,
    enforce_parameter_schema: bool = True,
    work_pool_name: str | None = None,
    work_queue_name: str | None = None,
    job_variables: dict[str, Any] | None = None,
    entrypoint_type: Any = None,
    **_ignored: Any,
) -> RunnerDeployment:
    """Describe a deployment of ``flow`` (not registered yet; see :meth:`RunnerDeployment.apply`).

    Raises:
        ValueError: a schedule argument is invalid.
        EntrypointError: the flow has no file to load it from.
    """
    if not name or "/" in name:
        raise ValueError(f"A deployment name is non-empty and has no '/': {name!r}")
    source: FlowSource | None = getattr(flow, SOURCE_ATTRIBUTE, None)
    if source is not None:
        path, entrypoint, pull_steps = None, source.entrypoint, source.pull_steps
    else:
        path, entrypoint = flow_location(flow)
        pull_steps = None
    return RunnerDeployment(
        name=name,
        flow_name=flow.name,
        entrypoint=entrypoint,
        path=path,
        pull_steps=pull_steps,
        schedules=schedules_from(cron, interval, rrule, schedules, schedule, timezone),
        parameters=dict(parameters or {}),
        parameter_openapi_schema=flow.parameters,
        enforce_parameter_schema=enforce_parameter_schema,
        description=description if description is not None else flow.description,
        version=version or flow.version,
        tags=list(tags or []),
        concurrency_limit=concurrency_limit,
        paused=bool(paused),
        work_pool_name=work_pool_name,
        work_queue_name=work_queue_name,
        job_variables=dict(job_variables or {}),
    )


def deploy(
    *deployments: RunnerDeployment,
    work_pool_name: str | None = None,
    client: Any = None,
    print_next_steps: bool = False,
    **_ignored: Any,
) -> list[UUID]:
    """Register deployments whose runs a worker of ``work_pool_name`` executes; their ids.

    Deployments without pull steps get one that changes into their ``path`` (their code
    must then be at the same place on the worker's machine).

    Raises:
        ValueError: no work pool is named (here or on a deployment).
        ObjectNotFound: the work pool does not exist.
    """
    ids: list[UUID] = []
    for deployment in deployments:
        deployment.work_pool_name = deployment.work_pool_name or work_pool_name
        if not deployment.work_pool_name:
            raise ValueError(
                f"Deployment {deployment.full_name!r} needs a work pool: deploy(..., work_pool_name=...)"
            )
        if deployment.pull_steps is None and deployment.path:
            deployment.pull_steps = [
                {f"{STEP_PREFIX}set_working_directory": {"directory": deployment.path}}
            ]
        ids.append(deployment.apply(client))
        if print_next_steps:
            print(
                f"Deployment {deployment.full_name!r} created ({ids[-1]}). Start a worker: "
                f"flowplane worker start --pool {deployment.work_pool_name!r}"
            )
    return ids


def flow_deploy(
    flow: Flow[Any, Any],
    name: str,
    work_pool_name: str | None = None,
    *,
    print_next_steps: bool = False,
    **options: Any,
) -> UUID:
    """``flow.deploy(...)``: register a deployment of ``flow`` run by a work pool's workers."""
    deployment = to_deployment(flow, name, work_pool_name=work_pool_name, **options)
    return deploy(deployment, print_next_steps=print_next_steps)[0]


# --- from_source -----------------------------------------------------------------------


def is_git_url(source: str) -> bool:
    """Whether ``source`` names a git repository rather than a local folder."""
    return source.startswith(
        ("https://", "http://", "git@", "ssh://", "git://", "file://")
    ) or source.rstrip("/").endswith(".git")


def source_pull_steps(source: str, branch: str | None = None) -> list[dict[str, Any]]:
    """The pull steps that fetch ``source``: a git clone then a cd into it, or a cd into a folder."""
    if is_git_url(source):
        clone: dict[str, Any] = {"id": "clone-step", "repository": source}
        if branch:
            clone["branch"] = branch
        return [
            {f"{STEP_PREFIX}git_clone": clone},
            {f"{STEP_PREFIX}set_working_directory": {"directory": "{{ clone-step.directory }}"}},
        ]
    return [{f"{STEP_PREFIX}set_working_directory": {"directory": str(Path(source).resolve())}}]


def from_source(source: Any, entrypoint: str) -> Flow[Any, Any]:
    """Load the flow at ``entrypoint`` (``path/file.py:fn``, relative to ``source``) from a folder or git URL.

    The returned flow remembers its source, so its deployments carry pull steps that fetch
    the code on a worker's machine. A git source is cloned to a temporary folder to load it.

    Raises:
        EntrypointError: the folder does not exist or the flow cannot be loaded.
        StepError: cloning the repository failed.
    """
    from flowplane.deploy.steps import git_clone
    from flowplane.sdk.entrypoints import load_flow_from_entrypoint

    url = getattr(source, "url", source)
    branch = getattr(source, "branch", None)
    if not isinstance(url, str):
        raise TypeError(f"from_source takes a folder or a git URL, not {source!r}")
    previous = os.getcwd()
    if is_git_url(url):
        scratch = tempfile.mkdtemp(prefix="flowplane-source-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        os.chdir(scratch)
        try:
            folder = git_clone(url, branch=branch)["directory"]
        finally:
            os.chdir(previous)
    else:
        folder = str(Path(url).expanduser().resolve())
        if not os.path.isdir(folder):
            raise EntrypointError(f"from_source: {url} is not a folder")
    where, _, name = entrypoint.rpartition(":")
    try:
        flow = load_flow_from_entrypoint(f"{os.path.join(folder, where)}:{name}")
    finally:
        os.chdir(previous)
    object.__setattr__(
        flow, SOURCE_ATTRIBUTE, FlowSource(url, entrypoint, source_pull_steps(url, branch))
    )
    return flow


__all__ = [
    "FlowSource",
    "RunnerDeployment",
    "deploy",
    "flow_deploy",
    "flow_location",
    "from_source",
    "is_git_url",
    "schedule_create",
    "schedules_from",
    "source_pull_steps",
    "to_deployment",
]
