"""Pull steps: what a deployment's process does before loading its flow (clone, cd, install, run).

A deployment stores its pull steps as Prefect does: a list of one-key dicts, the key
naming the step (``prefect.deployments.steps.git_clone``; flowplane also accepts
``flowplane.deploy.steps.git_clone`` and the bare ``git_clone``) and the value its
keyword arguments. A step may carry an ``id``; later steps refer to its outputs as
``{{ id.key }}``, and to environment variables as ``{{ $NAME }}``. Every step's
outputs are merged into the result; a ``directory`` there is where the flow's code is.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flowplane.exceptions import StepError


def set_working_directory(directory: str) -> dict[str, str]:
    """Change the process's working directory to ``directory``."""
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise StepError(f"set_working_directory: {directory} is not a folder")
    os.chdir(path)
    return {"directory": str(path.resolve())}


def git_clone(
    repository: str,
    branch: str | None = None,
    access_token: str | None = None,
    include_submodules: bool = False,
    directories: list[str] | None = None,
    **_: Any,
) -> dict[str, str]:
    """Clone ``repository`` (shallow) into a folder of the working directory named after it."""
    name = repository.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    target = f"{name}-{branch}" if branch else name
    url = repository
    if access_token and url.startswith("https://"):
        url = f"https://{access_token}@{url.removeprefix('https://')}"
    command = ["git", "clone", "--depth", "1"]
    if branch:
        command += ["--branch", branch]
    if include_submodules:
        command += ["--recurse-submodules"]
    if Path(target).exists():
        # A process reusing its folder: bring the clone up to date instead.
        _run(["git", "-C", target, "pull", "--ff-only"], "git_clone", secret=access_token)
    else:
        _run([*command, url, target], "git_clone", secret=access_token)
    return {"directory": str(Path(target).resolve())}


def pip_install_requirements(
    directory: str | None = None, requirements_file: str = "requirements.txt", **_: Any
) -> dict[str, str]:
    """``pip install -r requirements_file`` (relative to ``directory``) into this interpreter."""
    path = Path(directory or ".") / requirements_file
    if not path.is_file():
        raise StepError(f"pip_install_requirements: no file {path}")
    out = _run(
        [sys.executable, "-m", "pip", "install", "-q", "-r", str(path)], "pip_install_requirements"
    )
    return {"stdout": out}


def run_shell_script(
    script: str,
    directory: str | None = None,
    env: Mapping[str, str] | None = None,
    expand_env_vars: bool = False,
    **_: Any,
) -> dict[str, str]:
    """Run each line of ``script`` as a command (no shell), in ``directory``; their output."""
    environment = {**os.environ, **(env or {})}
    outputs: list[str] = []
    for line in script.splitlines():
        line = line.strip()
        if not line:
            continue
        if expand_env_vars:
            line = os.path.expandvars(line)
        outputs.append(_run(shlex.split(line), "run_shell_script", cwd=directory, env=environment))
    stdout = "\n".join(o for o in outputs if o)
    return {"stdout": stdout, "stderr": ""}


def _run(
    command: list[str],
    step: str,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    secret: str | None = None,
) -> str:
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise StepError(f"{step}: {exc.filename} is not installed") from None
    if done.returncode != 0:
        shown = " ".join(command)
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        if secret:
            shown, detail = shown.replace(secret, "***"), [detail[0].replace(secret, "***")]
        raise StepError(f"{step}: `{shown}` exited with {done.returncode}: {detail[0]}")
    return done.stdout.strip()


STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "set_working_directory": set_working_directory,
    "git_clone": git_clone,
    "pip_install_requirements": pip_install_requirements,
    "run_shell_script": run_shell_script,
}
_PREFIXES = ("prefect.deployments.steps.", "flowplane.deploy.steps.")
_TEMPLATE = re.compile(r"\{\{\s*([^}\s]+)\s*\}\}")


def step_function(key: str) -> Callable[..., dict[str, Any]]:
    """The function for a step key (``prefect.deployments.steps.git_clone`` and the like)."""
    name = key
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            name = key[len(prefix) :]
    # Prefect 2's names (prefect.deployments.steps.pull.git_clone) end the same way.
    name = name.rsplit(".", 1)[-1]
    fn = STEPS.get(name)
    if fn is None:
        raise StepError(f"Unknown pull step {key!r}; flowplane runs: {', '.join(sorted(STEPS))}")
    return fn


def resolve(value: Any, outputs: Mapping[str, Mapping[str, Any]], env: Mapping[str, str]) -> Any:
    """``value`` with ``{{ id.key }}`` and ``{{ $NAME }}`` placeholders filled in (recursively)."""
    if isinstance(value, dict):
        return {k: resolve(v, outputs, env) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs, env) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(reference: str) -> Any:
        if reference.startswith("$"):
            return env.get(reference[1:], "")
        step_id, _, key = reference.partition(".")
        if step_id in outputs and key in outputs[step_id]:
            return outputs[step_id][key]
        raise StepError(f"Pull step placeholder {{{{ {reference} }}}} refers to nothing")

    whole = _TEMPLATE.fullmatch(value.strip())
    if whole:
        return lookup(whole.group(1))
    return _TEMPLATE.sub(lambda m: str(lookup(m.group(1))), value)


def run_steps(
    steps: list[dict[str, Any]] | None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run ``steps`` in order; all their outputs merged (later steps win)."""
    environment = os.environ if env is None else env
    merged: dict[str, Any] = {}
    by_id: dict[str, dict[str, Any]] = {}
    for number, step in enumerate(steps or [], 1):
        if not isinstance(step, dict) or len(step) != 1:
            raise StepError(f"Pull step {number} must be a one-key mapping, got {step!r}")
        ((key, arguments),) = step.items()
        arguments = dict(arguments or {})
        step_id = arguments.pop("id", None)
        arguments.pop("requires", None)
        fn = step_function(key)
        output = fn(**resolve(arguments, by_id, environment)) or {}
        if step_id:
            by_id[str(step_id)] = output
        merged.update(output)
    return merged


__all__ = [
    "StepError",
    "git_clone",
    "pip_install_requirements",
    "resolve",
    "run_shell_script",
    "run_steps",
    "set_working_directory",
    "step_function",
]
