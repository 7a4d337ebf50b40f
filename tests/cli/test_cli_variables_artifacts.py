"""``flowplane variable`` and ``flowplane artifact`` as real subprocesses: JSON values, tables, -o json, exit codes and one-line errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cli_harness import ok, ok_json, one_line_error

from flowplane.client import get_client
from flowplane.embedded import shutdown_embedded_servers

# --- variables ------------------------------------------------------------------------


def test_set_get_inspect_ls_unset(flowplane_home: Path) -> None:
    assert "Set variable 'answer'" in ok("variable", "set", "answer", "42", "--tag", "math")
    ok("variable", "set", "greeting", "hello world")
    ok("variable", "set", "cfg", '{"a": [1, null]}')
    assert ok("variable", "get", "answer").strip() == "42"
    assert ok("variable", "get", "greeting").strip() == '"hello world"'
    assert json.loads(ok("variable", "get", "cfg")) == {"a": [1, None]}

    inspected = ok_json("variable", "inspect", "answer")
    assert inspected["value"] == 42 and inspected["tags"] == ["math"]
    assert "answer" in ok("variable", "inspect", "answer")

    listed = ok_json("variable", "ls")
    assert [v["name"] for v in listed] == ["answer", "cfg", "greeting"]
    assert [v["name"] for v in ok_json("variable", "ls", "--tag", "math")] == ["answer"]
    assert [v["name"] for v in ok_json("variable", "ls", "--name", "ree")] == ["greeting"]
    table = ok("variable", "ls")
    assert "answer" in table and '"hello world"' in table and "math" in table

    assert "Unset variable 'answer'" in ok("variable", "unset", "answer")
    assert one_line_error("variable", "get", "answer") == "Error: Variable 'answer' not found."
    ok("variable", "delete", "cfg")
    assert [v["name"] for v in ok_json("variable", "ls")] == ["greeting"]


def test_overwrite_rules(flowplane_home: Path) -> None:
    ok("variable", "set", "region", "eu")
    line = one_line_error("variable", "set", "region", "us")
    assert line == "Error: Variable 'region' already exists. Use --overwrite to update it."
    assert ok("variable", "get", "region").strip() == '"eu"'
    ok("variable", "set", "region", "us", "--overwrite", "--tag", "new")
    assert ok_json("variable", "inspect", "region")["tags"] == ["new"]
    assert ok("variable", "get", "region").strip() == '"us"'


def test_variable_errors_are_one_line(flowplane_home: Path) -> None:
    line = one_line_error("variable", "set", "Bad Name", "1")
    assert "lowercase letters" in line
    assert ok_json("variable", "ls") == []
    assert one_line_error("variable", "inspect", "nope") == "Error: Variable 'nope' not found."
    assert one_line_error("variable", "unset", "nope") == "Error: Variable 'nope' not found."
    assert "only 'json'" in one_line_error("variable", "ls", "-o", "yaml")
    assert ok("variable", "ls").strip() == "No variables found."


# --- artifacts ------------------------------------------------------------------------


@pytest.fixture
def artifacts(flowplane_home: Path) -> dict[str, Any]:
    run_id = uuid.uuid4()
    with get_client(sync_client=True) as client:

        def make(**fields: Any) -> uuid.UUID:
            return client.create_artifact(fields).id

        made = {
            "daily-1": make(key="daily", type="table", data="[[1]]", flow_run_id=str(run_id)),
            "daily-2": make(key="daily", type="table", data="[[2]]", flow_run_id=str(run_id)),
            "report": make(key="report", type="markdown", data="# hi"),
            "loose": make(type="progress", data=50),
        }
    shutdown_embedded_servers()  # the CLI processes open the database themselves
    return {**made, "run": run_id}


def test_artifact_ls_shows_the_latest_per_key(artifacts: dict[str, Any]) -> None:
    latest = ok_json("artifact", "ls")
    assert [(a["key"], a["latest_id"]) for a in latest] == [
        ("daily", str(artifacts["daily-2"])),
        ("report", str(artifacts["report"])),
    ]
    table = ok("artifact", "ls")
    assert str(artifacts["daily-2"]) in table and str(artifacts["daily-1"]) not in table
    assert "report" in table and "markdown" in table

    every = ok_json("artifact", "ls", "--all")
    assert {a["id"] for a in every} == {str(v) for k, v in artifacts.items() if k != "run"}
    assert [a["key"] for a in ok_json("artifact", "ls", "--type", "markdown")] == ["report"]


def test_artifact_inspect_lists_a_keys_versions(artifacts: dict[str, Any]) -> None:
    versions = ok_json("artifact", "inspect", "daily")
    assert {v["id"] for v in versions} == {str(artifacts["daily-1"]), str(artifacts["daily-2"])}
    assert all(v["flow_run_id"] == str(artifacts["run"]) for v in versions)
    assert "[[2]]" in ok("artifact", "inspect", "daily")
    assert one_line_error("artifact", "inspect", "nope") == "Error: Artifact 'nope' not found."


def test_artifact_delete(artifacts: dict[str, Any]) -> None:
    out = ok("artifact", "delete", "daily", "--yes")
    assert "Deleted 2 artifact(s) with key 'daily'." in out
    assert one_line_error("artifact", "inspect", "daily") == "Error: Artifact 'daily' not found."
    ok("artifact", "delete", "--id", str(artifacts["loose"]), "--yes")
    assert {a["id"] for a in ok_json("artifact", "ls", "--all")} == {str(artifacts["report"])}
    missing = uuid.uuid4()
    line = one_line_error("artifact", "delete", "--id", str(missing), "--yes")
    assert line == f"Error: Artifact {missing} not found."
    assert "not both" in one_line_error("artifact", "delete", "report", "--id", str(missing))
    assert "not a valid artifact id" in one_line_error("artifact", "delete", "--id", "zzz")
    assert "not found" in one_line_error("artifact", "delete", "nokey", "--yes")
