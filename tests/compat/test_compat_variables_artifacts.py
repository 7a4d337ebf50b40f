"""The real Prefect 3.6.29 client, flows and CLI use variables and artifacts on our server; we read them back through our API."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from compat_support import RESULT_MARKER, PrefectRunner, Server

pytestmark = pytest.mark.compat

SCRIPT = Path(__file__).resolve().parent / "flows" / "varart_scenarios.py"


@pytest.fixture(scope="module")
def outcome(prefect: PrefectRunner, flowplane_server: Server) -> dict[str, Any]:
    """What varart_scenarios.py did with the real Prefect client (run once per module)."""
    tag = uuid.uuid4().hex[:8]
    done = prefect.script(SCRIPT, tag)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        pytest.fail(
            f"varart_scenarios.py printed no result (exit {done.returncode})\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-6000:]}\n"
            f"--- server log\n{flowplane_server.log_tail()}",
            pytrace=False,
        )
    return json.loads(lines[-1][len(RESULT_MARKER) :])


def step(outcome: dict[str, Any], name: str) -> Any:
    assert name not in outcome["errors"], f"{name} raised in Prefect:\n{outcome['errors'][name]}"
    return outcome["steps"][name]


def test_prefect_variable_set_get_unset(outcome: dict[str, Any], api: httpx.Client) -> None:
    result = step(outcome, "variables")
    assert result["got"] == {"rows": [1, 2], "ok": True}
    assert result["refused"] and "already exists" in result["refused"]
    assert result["after_overwrite"] == 7
    assert result["default"] == "fallback"
    assert result["unset"] is True and result["unset_again"] is False
    stored = api.get(f"/variables/name/{result['name']}").json()
    assert stored["value"] == 7 and stored["tags"] == ["compat", "second"]
    gone = api.get(f"/variables/name/gone_{outcome['tag']}")
    assert gone.status_code == 404


def test_prefect_async_variables(outcome: dict[str, Any], api: httpx.Client) -> None:
    result = step(outcome, "async_variables")
    assert result["value"] == [1, "two"]
    assert api.get(f"/variables/name/{result['name']}").json()["value"] == [1, "two"]


def test_prefect_artifacts_in_a_flow(outcome: dict[str, Any], api: httpx.Client) -> None:
    result = step(outcome, "artifacts")
    tag, run_id = outcome["tag"], result["flow_run_id"]

    markdown = api.get(f"/artifacts/{result['markdown']}").json()
    assert markdown["type"] == "markdown" and markdown["data"] == "# Report\nall good"
    assert markdown["flow_run_id"] == run_id and markdown["task_run_id"] is None
    latest = api.get(f"/artifacts/report-{tag}/latest").json()
    assert latest["id"] == result["markdown_latest"]

    link = api.get(f"/artifacts/{result['link']}").json()
    assert link["data"] == "[Example](https://example.com)"

    progress = api.get(f"/artifacts/{result['progress']}").json()
    assert progress["type"] == "progress" and progress["data"] == 75.0

    table = api.get(f"/artifacts/{result['table']['artifact_id']}").json()
    assert table["type"] == "table" and table["description"] == "rows"
    assert json.loads(table["data"]) == [{"a": 1, "b": None}, {"a": 2, "b": 3.5}]
    assert table["task_run_id"] == result["table"]["task_run_id"]
    assert table["flow_run_id"] == run_id

    body = {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    assert api.post("/artifacts/count", json=body).json() == 5
    keys = {c["key"] for c in api.post("/artifacts/latest/filter", json=body).json()}
    assert keys == {f"report-{tag}", f"link-{tag}", f"progress-{tag}", f"table-{tag}"}


def test_prefect_variable_cli(
    outcome: dict[str, Any], prefect: PrefectRunner, api: httpx.Client
) -> None:
    tag = outcome["tag"]
    step(outcome, "variables")
    listed = prefect.cli("variable", "ls", "-o", "json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    names = [v["name"] for v in json.loads(listed.stdout[listed.stdout.index("[") :])]
    assert f"kept_{tag}" in names and f"compat_var_{tag}" in names
    table = prefect.cli("variable", "ls")
    assert table.returncode == 0 and f"kept_{tag}" in table.stdout
    got = prefect.cli("variable", "get", f"kept_{tag}")
    assert got.returncode == 0 and got.stdout.strip() == '"stays"'
    made = prefect.cli("variable", "set", f"cli_{tag}", '{"x": 1}', "--tag", "cli")
    assert made.returncode == 0, made.stdout + made.stderr
    assert api.get(f"/variables/name/cli_{tag}").json()["value"] == {"x": 1}
    dropped = prefect.cli("variable", "unset", f"cli_{tag}")
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert api.get(f"/variables/name/cli_{tag}").status_code == 404
    missing = prefect.cli("variable", "get", f"never_{tag}")
    assert missing.returncode == 1 and "not found" in missing.stdout + missing.stderr


def test_prefect_artifact_cli(
    outcome: dict[str, Any], prefect: PrefectRunner, api: httpx.Client
) -> None:
    tag = outcome["tag"]
    result = step(outcome, "artifacts")
    listed = prefect.cli("artifact", "ls", "-o", "json")
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-3000:]
    latest = json.loads(listed.stdout[listed.stdout.index("[") :])
    by_key = {a["key"]: a["latest_id"] for a in latest}
    assert by_key[f"report-{tag}"] == result["markdown_latest"]
    table = prefect.cli("artifact", "ls")
    assert table.returncode == 0 and f"progress-{tag}" in table.stdout
    inspected = prefect.cli("artifact", "inspect", f"report-{tag}", "-o", "json")
    assert inspected.returncode == 0, inspected.stderr[-3000:]
    versions = json.loads(inspected.stdout[inspected.stdout.index("[") :])
    assert {v["id"] for v in versions} == {result["markdown"], result["markdown_latest"]}
    deleted = prefect.cli("artifact", "delete", f"link-{tag}")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert api.get(f"/artifacts/{result['link']}").status_code == 404
