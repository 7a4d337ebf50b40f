"""Pull steps run for real: a git clone of a real repository, a working directory, shell commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from flowplane.deploy.steps import resolve, run_steps, step_function
from flowplane.exceptions import StepError


@pytest.fixture(autouse=True)
def _keep_cwd() -> object:
    before = os.getcwd()
    yield
    os.chdir(before)


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def _repository(tmp_path: Path) -> Path:
    source = tmp_path / "flows-repo"
    source.mkdir()
    _git("init", "-q", "-b", "main", cwd=source)
    (source / "my_flow.py").write_text("VALUE = 42\n")
    _git("add", ".", cwd=source)
    _git("commit", "-q", "-m", "flows", cwd=source)
    return source


def test_git_clone_then_the_directory_output_is_where_the_code_is(tmp_path: Path) -> None:
    source = _repository(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    os.chdir(work)

    out = run_steps(
        [
            {
                "prefect.deployments.steps.git_clone": {
                    "id": "clone",
                    "repository": f"file://{source}",
                    "branch": "main",
                }
            },
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": "{{ clone.directory }}"
                }
            },
        ]
    )

    assert Path(out["directory"]) == work / "flows-repo-main"
    assert Path.cwd() == work / "flows-repo-main"
    assert (Path.cwd() / "my_flow.py").read_text() == "VALUE = 42\n"
    # Cloning again into the same place updates instead of failing.
    os.chdir(work)
    again = run_steps([{"git_clone": {"repository": f"file://{source}", "branch": "main"}}])
    assert again["directory"] == out["directory"]


def test_run_shell_script_runs_each_line_in_the_directory(tmp_path: Path) -> None:
    out = run_steps(
        [
            {
                "flowplane.deploy.steps.run_shell_script": {
                    "script": "echo hello\npwd",
                    "directory": str(tmp_path),
                }
            }
        ]
    )
    assert out["stdout"].splitlines() == ["hello", str(tmp_path)]


def test_placeholders_read_step_outputs_and_environment() -> None:
    outputs = {"clone": {"directory": "/x/y"}}
    env = {"BRANCH": "dev"}
    assert resolve({"a": "{{ clone.directory }}", "b": ["at {{ $BRANCH }}"]}, outputs, env) == {
        "a": "/x/y",
        "b": ["at dev"],
    }
    with pytest.raises(StepError, match="refers to nothing"):
        resolve("{{ nope.directory }}", outputs, env)


def test_bad_steps_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StepError, match="Unknown pull step 'prefect.deployments.steps.teleport'"):
        step_function("prefect.deployments.steps.teleport")
    with pytest.raises(StepError, match="one-key mapping"):
        run_steps([{"git_clone": {}, "set_working_directory": {}}])
    with pytest.raises(StepError, match="is not a folder"):
        run_steps([{"set_working_directory": {"directory": str(tmp_path / "missing")}}])
    with pytest.raises(StepError, match="exited with"):
        run_steps([{"git_clone": {"repository": f"file://{tmp_path}/no-such-repo"}}])
    with pytest.raises(StepError, match="no file"):
        run_steps([{"pip_install_requirements": {"directory": str(tmp_path)}}])
