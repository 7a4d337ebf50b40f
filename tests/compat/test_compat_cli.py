"""The real ``prefect`` CLI (3.6.29) lists, inspects and shows logs of flow runs on our server."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest
from compat_support import PrefectRunner, ScenarioRun, eventually

pytestmark = pytest.mark.compat


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    """The command's stdout, after checking it exited 0 (the message shows both streams)."""
    assert done.returncode == 0, (
        f"{' '.join(done.args[-3:])} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    return done.stdout


def json_output(text: str) -> Any:
    """The JSON document in a command's output (anything printed before it is ignored)."""
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    assert starts, f"no JSON in output:\n{text[-2000:]}"
    return json.loads(text[min(starts) :])


@pytest.fixture(scope="module")
def failing_logged(api: httpx.Client, scenarios: ScenarioRun) -> dict[str, Any]:
    """The failing scenario's record, once its logs have reached the server."""
    record = scenarios.flow("failing")
    body = {"logs": {"flow_run_id": {"any_": [record["flow_run_id"]]}}}

    def logged() -> None:
        response = api.post("/logs/filter", json=body)
        assert response.status_code == 200, response.text
        assert "about to explode" in [log["message"] for log in response.json()]

    eventually(logged)
    return record


def test_flow_run_ls_shows_the_runs(prefect: PrefectRunner, scenarios: ScenarioRun) -> None:
    out = succeeded(prefect.cli("flow-run", "ls", "--limit", "50"))
    for scenario in ("failing", "parent", "child"):
        record = scenarios.flow(scenario)
        assert record["flow_run_id"] in out, out
        assert record["name"] in out, out
    assert "compat-etl" in out


def test_flow_run_ls_json_filters_by_flow_name(
    prefect: PrefectRunner, scenarios: ScenarioRun
) -> None:
    out = succeeded(prefect.cli("flow-run", "ls", "--flow-name", "compat-child", "-o", "json"))
    runs = json_output(out)
    assert scenarios.flow("child")["flow_run_id"] in [run["id"] for run in runs]
    assert all(run["name"].startswith("compat-child") for run in runs), runs


def test_flow_run_ls_filters_by_state(prefect: PrefectRunner, scenarios: ScenarioRun) -> None:
    out = succeeded(
        prefect.cli("flow-run", "ls", "--state", "Failed", "-o", "json", "--limit", "50")
    )
    ids = [run["id"] for run in json_output(out)]
    assert scenarios.flow("failing")["flow_run_id"] in ids
    assert scenarios.flow("child")["flow_run_id"] not in ids


def test_flow_run_inspect(prefect: PrefectRunner, scenarios: ScenarioRun) -> None:
    record = scenarios.flow("child")
    out = succeeded(prefect.cli("flow-run", "inspect", record["flow_run_id"]))
    assert record["flow_run_id"] in out
    assert record["name"] in out
    run = json_output(
        succeeded(prefect.cli("flow-run", "inspect", record["flow_run_id"], "-o", "json"))
    )
    assert (run["id"], run["name"], run["state"]["type"]) == (
        record["flow_run_id"],
        record["name"],
        "COMPLETED",
    )


def test_flow_run_inspect_unknown_id_fails_cleanly(prefect: PrefectRunner) -> None:
    done = prefect.cli("flow-run", "inspect", "00000000-0000-0000-0000-000000000000")
    assert done.returncode == 1
    assert "not found" in done.stdout + done.stderr


def test_flow_run_logs(prefect: PrefectRunner, failing_logged: dict[str, Any]) -> None:
    out = succeeded(prefect.cli("flow-run", "logs", failing_logged["flow_run_id"]))
    name = failing_logged["name"]
    assert f"ERROR   | Flow run {name!r} - about to explode" in out, out
    assert f"INFO    | Flow run {name!r} - Beginning flow run {name!r}" in out, out
    assert out.index("Beginning flow run") < out.index("about to explode")
