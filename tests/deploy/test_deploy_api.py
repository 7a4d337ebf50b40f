"""Deployments from Python and project files, against the embedded API: to_deployment, deploy, from_source, run_deployment, flowplane.yaml."""

from __future__ import annotations

import datetime as dt
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowplane import flow
from flowplane.client import get_client
from flowplane.deploy.deployments import schedules_from
from flowplane.deploy.project import build, find_project_file, load_project, select
from flowplane.deployments import run_deployment
from flowplane.exceptions import ConfigurationError, EntrypointError, ObjectNotFound


@flow
def adder(x: int = 1, y: int = 2) -> int:
    return x + y


def stored(full_name: str) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(full_name)


def test_schedules_from_shortcuts_lists_and_models() -> None:
    made = schedules_from(
        cron=["0 3 * * *", "0 4 * * *"], interval=dt.timedelta(hours=1), timezone="UTC"
    )
    assert made == [
        {"schedule": {"cron": "0 3 * * *", "timezone": "UTC"}, "active": True},
        {"schedule": {"cron": "0 4 * * *", "timezone": "UTC"}, "active": True},
        {"schedule": {"interval": 3600.0, "timezone": "UTC"}, "active": True},
    ]
    flat = schedules_from(schedules=[{"rrule": "FREQ=DAILY", "active": False}])
    assert flat == [{"schedule": {"rrule": "FREQ=DAILY"}, "active": False}]
    with pytest.raises(ValueError, match="either schedules= or cron"):
        schedules_from(cron="* * * * *", schedules=[{"interval": 5}])
    with pytest.raises(ValueError, match="positive number of seconds"):
        schedules_from(interval=-5)
    with pytest.raises(ValueError, match="cron, interval or rrule"):
        schedules_from(schedules=[{"timezone": "UTC"}])


def test_to_deployment_apply_creates_then_updates() -> None:
    deployment = adder.to_deployment("nightly", cron="0 3 * * *", parameters={"x": 5}, tags=["t"])
    assert deployment.entrypoint is not None and deployment.entrypoint.endswith(
        "test_deploy_api.py:adder"
    )
    first = deployment.apply()
    got = stored("adder/nightly")
    assert got.id == first and got.parameters == {"x": 5} and got.tags == ["t"]
    assert got.path == deployment.path and got.work_pool_name is None
    assert got.schedules[0].schedule.cron == "0 3 * * *"
    assert set(got.parameter_openapi_schema["properties"]) == {"x", "y"}

    with get_client(sync_client=True) as client:
        client.pause_deployment(first)
    again = adder.to_deployment("nightly", interval=60, parameters={"x": 6}).apply()
    assert again == first
    got = stored("adder/nightly")
    assert got.paused is False  # re-applying (re-serving) resumes it, as Prefect's does
    assert got.parameters == {"x": 6} and got.schedules[0].schedule.interval == dt.timedelta(
        seconds=60
    )


def test_to_deployment_rejects_bad_names_and_flows_without_files() -> None:
    with pytest.raises(ValueError, match="no '/'"):
        adder.to_deployment("a/b")
    namespace: dict[str, Any] = {"flow": flow}
    exec(compile("@flow\ndef ghost():\n    return 1\n", "<typed-in>", "exec"), namespace)
    with pytest.raises(EntrypointError, match="not defined in a file"):
        namespace["ghost"].to_deployment("x")


def test_flow_deploy_needs_an_existing_pool_and_adds_a_cd_step() -> None:
    with pytest.raises(ValueError, match="needs a work pool"):
        adder.deploy("nopool")
    with pytest.raises(ObjectNotFound):
        adder.deploy("missing", work_pool_name="no-such-pool")
    with get_client(sync_client=True) as client:
        assert client.read_deployments() == []
        client.create_work_pool({"name": "pool", "type": "process"})
    deployment_id = adder.deploy(
        "on-pool", work_pool_name="pool", job_variables={"env": {"A": "1"}}
    )
    got = stored("adder/on-pool")
    assert got.id == deployment_id and got.work_pool_name == "pool"
    assert got.job_variables == {"env": {"A": "1"}}
    assert got.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": got.path}}
    ]


def write_project(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sourced.py").write_text(
        textwrap.dedent(
            """
            from flowplane import flow

            @flow(name="sourced")
            def sourced_flow(word: str = "hi"):
                return word * 2
            """
        )
    )


def test_from_source_folder(tmp_path: Path) -> None:
    write_project(tmp_path / "proj")
    loaded = flow.from_source(str(tmp_path / "proj"), "sourced.py:sourced_flow")
    assert loaded.name == "sourced" and loaded(word="ab") == "abab"
    with get_client(sync_client=True) as client:
        client.create_work_pool({"name": "pool", "type": "process"})
    loaded.deploy("from-folder", work_pool_name="pool")
    got = stored("sourced/from-folder")
    assert got.entrypoint == "sourced.py:sourced_flow"
    assert got.pull_steps == [
        {
            "prefect.deployments.steps.set_working_directory": {
                "directory": str((tmp_path / "proj").resolve())
            }
        }
    ]
    with pytest.raises(EntrypointError, match="is not a folder"):
        flow.from_source(str(tmp_path / "nope"), "sourced.py:sourced_flow")


def test_from_source_git_repository(tmp_path: Path) -> None:
    work = tmp_path / "work"
    write_project(work)
    bare = tmp_path / "repo.git"

    def git(*args: str, cwd: Path = work) -> None:
        subprocess.run(
            ["git", "-c", "user.email=t@e.x", "-c", "user.name=t", *args],
            cwd=cwd,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "x")
    git("push", "-q", str(bare), "main")
    loaded = flow.from_source(str(bare), "sourced.py:sourced_flow")
    assert loaded.name == "sourced"
    deployment = loaded.to_deployment("from-git")
    assert deployment.pull_steps == [
        {"prefect.deployments.steps.git_clone": {"id": "clone-step", "repository": str(bare)}},
        {
            "prefect.deployments.steps.set_working_directory": {
                "directory": "{{ clone-step.directory }}"
            }
        },
    ]
    assert deployment.path is None and deployment.entrypoint == "sourced.py:sourced_flow"


def test_run_deployment_without_waiting_idempotency_and_errors() -> None:
    adder.to_deployment("runme", parameters={"x": 10}).apply()
    run = run_deployment("adder/runme", parameters={"y": 1}, timeout=0)
    assert run.state.type.value == "SCHEDULED" and run.parameters == {"x": 10, "y": 1}

    first = run_deployment("adder/runme", idempotency_key="k1", timeout=0)
    second = run_deployment(str(first.deployment_id), idempotency_key="k1", timeout=0)
    assert first.id == second.id

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    scheduled = run_deployment("adder/runme", scheduled_time=later, timeout=0)
    assert abs((scheduled.next_scheduled_start_time - later).total_seconds()) < 1

    # Nothing serves it: waiting a short while returns the run as it is.
    waited = run_deployment("adder/runme", timeout=0.3, poll_interval=0.1)
    assert waited.state.type.value == "SCHEDULED"

    with pytest.raises(ObjectNotFound):
        run_deployment("adder/nope", timeout=0)
    with pytest.raises(ValueError):
        run_deployment("no-slash-and-no-id", timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        run_deployment("adder/runme", timeout=-1)


def test_run_deployment_inside_a_flow_is_linked_to_it() -> None:
    adder.to_deployment("child").apply()

    @flow
    def parent() -> Any:
        return run_deployment("adder/child", timeout=0)

    child = parent()
    assert child.parent_task_run_id is not None
    with get_client(sync_client=True) as client:
        task_run = client.read_task_run(child.parent_task_run_id)
        parent_runs = client.read_flow_runs(flow_filter={"name": {"any_": ["parent"]}})
    assert task_run.flow_run_id == parent_runs[0].id


PROJECT = """
name: demo
pull:
- prefect.deployments.steps.set_working_directory:
    directory: /srv/demo
deployments:
- name: one
  entrypoint: sourced.py:sourced_flow
  parameters: {word: yo}
  schedules:
  - cron: "0 3 * * *"
    timezone: Europe/Berlin
  - interval: 600
  work_pool: {name: pool, work_queue_name: fast, job_variables: {env: {A: "1"}}}
- name: two
  entrypoint: sourced.py:sourced_flow
  pull: []
"""


def test_project_file_prefect_name_selection_and_build(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / "prefect.yaml").write_text(PROJECT)
    path = find_project_file(tmp_path)
    assert path is not None and path.name == "prefect.yaml"
    project = load_project(path)
    with pytest.raises(ConfigurationError, match="--name NAME or --all"):
        select(project, [], False)
    with pytest.raises(ConfigurationError, match="No deployment 'three'"):
        select(project, ["three"], False)
    assert [s["name"] for s in select(project, ["sourced/two"], False)] == ["two"]
    assert len(select(project, [], True)) == 2

    one = build(project["deployments"][0], project, tmp_path)
    assert one.flow_name == "sourced" and one.parameters == {"word": "yo"}
    assert one.work_pool_name == "pool" and one.work_queue_name == "fast"
    assert one.job_variables == {"env": {"A": "1"}}
    assert one.pull_steps == project["pull"]
    assert one.schedules == [
        {"schedule": {"cron": "0 3 * * *", "timezone": "Europe/Berlin"}, "active": True},
        {"schedule": {"interval": 600.0}, "active": True},
    ]
    two = build(project["deployments"][1], project, tmp_path)
    # No pull steps anywhere for it: it changes into the project folder.
    assert two.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path.resolve())}}
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("deployments: [", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("deployments: {a: 1}", "must be a list of mappings"),
    ],
)
def test_bad_project_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "flowplane.yaml").write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        load_project(tmp_path / "flowplane.yaml")


def test_bad_deployment_entries(tmp_path: Path) -> None:
    write_project(tmp_path)
    project: dict[str, Any] = {"deployments": []}
    with pytest.raises(ConfigurationError, match="needs a name"):
        build({"entrypoint": "sourced.py:sourced_flow"}, project, tmp_path)
    with pytest.raises(ConfigurationError, match="needs an entrypoint"):
        build({"name": "x"}, project, tmp_path)
    with pytest.raises(ConfigurationError, match="cron, interval or rrule"):
        build(
            {"name": "x", "entrypoint": "sourced.py:sourced_flow", "schedules": [{"tz": 1}]},
            project,
            tmp_path,
        )
    with pytest.raises(EntrypointError):
        build({"name": "x", "entrypoint": "missing.py:f"}, project, tmp_path)


def flowplane_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    return subprocess.run(
        [str(Path(sys.executable).with_name("flowplane")), *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deploy",), "No flowplane.yaml or prefect.yaml here"),
        (("deploy", "sourced.py:sourced_flow"), "Give the new deployment one --name"),
        (("deploy", "--file", "nope.yaml"), "No project file nope.yaml"),
        (("deploy", "missing.py:f", "--name", "x"), "No such file"),
    ],
)
def test_cli_deploy_errors_are_one_line_and_create_nothing(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    write_project(tmp_path)
    done = flowplane_cli(tmp_path, *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    with get_client(sync_client=True) as client:
        assert client.read_deployments() == []


def test_cli_init_refuses_to_overwrite(tmp_path: Path) -> None:
    write_project(tmp_path)
    assert flowplane_cli(tmp_path, "init").returncode == 0
    again = flowplane_cli(tmp_path, "init")
    assert again.returncode == 1 and "exists already; use --force" in again.stderr
    assert flowplane_cli(tmp_path, "init", "--force", "--pool", "p2").returncode == 0
    project = load_project(tmp_path / "flowplane.yaml")
    assert project["deployments"][0]["work_pool"]["name"] == "p2"
    assert project["deployments"][0]["entrypoint"] == "sourced.py:sourced_flow"
