"""``flowplane run`` as a real subprocess: runs recorded with their parameters, streamed output, exit codes, and bad input refused in one line with no run made."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cli_harness import flowplane, ok_json, one_line_error

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello_flowplane.py"

GREET = """
from flowplane import flow, get_run_logger, task


@task
def shout(text: str) -> str:
    return text.upper()


@flow
def greet(name: str, times: int = 1) -> str:
    logger = get_run_logger()
    for _ in range(times):
        logger.info("hello %s", name)
    return shout(name)
"""

FAILING = """
from flowplane import flow, task


@task
def explode(n: int) -> int:
    raise ValueError(f"no luck with {n}")


@flow
def doomed(n: int = 3) -> int:
    return explode(n)
"""

TWO_FLOWS = """
from flowplane import flow


@flow
def alpha() -> int:
    return 1


@flow(name="beta-flow")
def beta() -> int:
    return 2
"""

WITH_SUBFLOW = """
from flowplane import flow


@flow
def child(x: int) -> int:
    return x * 2


@flow
def parent(x: int = 2) -> int:
    return child(x) + 1
"""


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def runs() -> list[dict]:
    return ok_json("flow-run", "ls")  # type: ignore[no-any-return]


def test_completing_flow_exits_0_streams_and_is_recorded_with_its_parameters(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "greet.py", GREET)
    result = flowplane(
        "run", "-p", str(path), "--params", '{"name": "Ann", "times": 1}', "--param", "times=2"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    [run] = runs()
    assert run["state"]["name"] == "Completed"
    assert run["parameters"] == {"name": "Ann", "times": 2}  # --param wins over --params
    assert run["id"] in out and run["name"] in out  # the id and name, shown at the start
    assert out.index(run["id"]) < out.index("hello Ann")
    assert out.count("hello Ann") == 2  # the run's log lines
    assert "Task run 'shout-0' - Entered state Completed" in out  # task state changes
    assert out.rstrip().splitlines()[-2].endswith("finished in state Completed")


def test_param_values_are_json_or_else_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "greet.py", GREET)
    result = flowplane("run", "-p", str(path), "--param", "name=Bob Smith", "--param", "times=3")
    assert result.returncode == 0, result.stdout + result.stderr
    # A str parameter keeps the text even where it reads as JSON.
    result = flowplane("run", "-p", f"{path}:greet", "--param", "name=42")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(str(r["parameters"]) for r in runs()) == [
        "{'name': '42', 'times': 1}",
        "{'name': 'Bob Smith', 'times': 3}",
    ]


def test_failing_flow_exits_1_and_shows_failed(tmp_path: Path) -> None:
    path = write(tmp_path, "doomed.py", FAILING)
    result = flowplane("run", "-p", str(path))
    assert result.returncode == 1
    assert "no luck with 3" in result.stdout
    assert "Task run 'explode-0' - Entered state Failed" in result.stdout
    assert "finished in state Failed" in result.stdout
    [run] = runs()
    assert run["state"]["type"] == "FAILED"


def test_module_form(tmp_path: Path) -> None:
    package = tmp_path / "shop_flows"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write(package, "greetings.py", GREET)
    result = flowplane(
        "run", "-m", "shop_flows.greetings:greet", "--param", "name=Mo", PYTHONPATH=str(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello Mo" in result.stdout
    [run] = runs()
    assert run["parameters"] == {"name": "Mo", "times": 1}


def test_several_flows_without_a_name_list_them_and_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "two.py", TWO_FLOWS)
    result = flowplane("run", "-p", str(path))
    assert result.returncode == 2
    assert "alpha" in result.stdout and "beta" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert f"{path}:alpha" in line
    assert runs() == []
    # Named by its attribute or by its flow name, it runs.
    assert flowplane("run", "-p", f"{path}:beta-flow").returncode == 0
    assert flowplane("run", "-p", f"{path}:alpha").returncode == 0
    assert sorted(r["state"]["name"] for r in runs()) == ["Completed", "Completed"]


def test_a_flow_called_by_another_is_not_a_candidate(tmp_path: Path) -> None:
    path = write(tmp_path, "nested.py", WITH_SUBFLOW)
    result = flowplane("run", "-p", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Running flow 'parent'" in result.stdout
    assert len(runs()) == 2  # the parent and its subflow


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-p", "{folder}/missing.py"], "No such file"),
        (["-p", "{folder}/broken.py"], "ZeroDivisionError"),
        (["-m", "no_such_module_here"], "No module named 'no_such_module_here'"),
        (["-p", "{folder}/greet.py:nope"], "no flow named 'nope'"),
        (["-p", "{folder}/greet.py", "--params", '{"name": '], "not valid JSON"),
        (["-p", "{folder}/greet.py", "--params", "[1, 2]"], "JSON object"),
        (["-p", "{folder}/greet.py", "--param", "justaname"], "not key=value"),
        (["-p", "{folder}/greet.py"], "needs 'name'"),
        (["-p", "{folder}/greet.py", "--param", "name=x", "--param", "bogus=1"], "'bogus'"),
        (["-p", "{folder}/greet.py", "--param", "name=x", "--param", "times=many"], "times"),
        (["-p", "{folder}/empty.py"], "defines no flow"),
        ([], "either -p"),
    ],
)
def test_bad_input_is_one_line_and_creates_no_run(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    write(tmp_path, "greet.py", GREET)
    write(tmp_path, "broken.py", "import os\nvalue = 1 / 0\n")
    write(tmp_path, "empty.py", "x = 1\n")
    line = one_line_error("run", *(a.replace("{folder}", str(tmp_path)) for a in args))
    assert expected in line
    assert runs() == []


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "greet.py", GREET)
    line = one_line_error(
        "run", "-p", str(path), "--param", "name=x", FLOWPLANE_API_URL="http://127.0.0.1:9/api"
    )
    assert "Cannot reach" in line


def test_the_example_flow_completes() -> None:
    result = flowplane("run", "-p", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Retry 1/2" in out and "Entered state Retrying" in out  # the flaky task's retry
    assert "orders," in out  # the subflow's printed report
    recorded = {r["name"]: r for r in runs()}
    assert len(recorded) == 2
    assert all(r["state"]["name"] == "Completed" for r in recorded.values())
    tasks = ok_json("task-run", "ls", "--limit", "50")
    assert {t["name"] for t in tasks} >= {
        "fetch_orders-0",
        "fetch_exchange_rate-0",
        "order_total-0",
        "order_total-3",
    }
