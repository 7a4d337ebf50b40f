"""The real Prefect 3 client, CLI and task engine under concurrency limits served by flowplane."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from compat_support import RESULT_MARKER, PrefectRunner, Server

pytestmark = pytest.mark.compat

SCRIPT = Path(__file__).resolve().parent / "flows" / "concurrency_scenarios.py"


def never_overlap(spans: list[list[float]]) -> bool:
    ordered = sorted(spans)
    return all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False))


@pytest.fixture(scope="module")
def limited_run(prefect: PrefectRunner, flowplane_server: Server) -> dict[str, Any]:
    """Creates a tag limit and a global limit of 1 with Prefect's CLI, then runs the script."""
    tag = f"compat-db-{uuid.uuid4().hex[:6]}"
    name = f"compat-gcl-{uuid.uuid4().hex[:6]}"
    made = prefect.cli("concurrency-limit", "create", tag, "1")
    assert made.returncode == 0, made.stdout + made.stderr
    made = prefect.cli("global-concurrency-limit", "create", name, "--limit", "1")
    assert made.returncode == 0, made.stdout + made.stderr
    done = prefect.script(SCRIPT, tag, name)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    assert lines, (
        f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}\n"
        f"{flowplane_server.log_tail()}"
    )
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    assert not result["errors"], result["errors"]
    return {"tag": tag, "name": name, **result}


def test_prefect_tagged_tasks_under_a_limit_of_one_never_overlap(
    limited_run: dict[str, Any], api: httpx.Client
) -> None:
    assert limited_run["tagged_result"] == [0, 1, 2, 3]
    spans = limited_run["spans"]["tagged"]
    assert len(spans) == 4
    assert never_overlap(spans)
    row = api.get(f"/concurrency_limits/tag/{limited_run['tag']}").json()
    assert row["active_slots"] == []  # every slot given back


def test_prefect_global_concurrency_blocks_never_overlap(
    limited_run: dict[str, Any], api: httpx.Client
) -> None:
    spans = limited_run["spans"]["global"]
    assert len(spans) == 4
    assert never_overlap(spans)
    row = api.get(f"/v2/concurrency_limits/{limited_run['name']}").json()
    assert (row["limit"], row["active_slots"]) == (1, 0)


def test_prefect_cli_lists_and_inspects_our_limits(
    limited_run: dict[str, Any], prefect: PrefectRunner
) -> None:
    listed = prefect.cli("global-concurrency-limit", "ls", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert {limited_run["name"], f"tag:{limited_run['tag']}"} <= names
    shown = prefect.cli("concurrency-limit", "inspect", limited_run["tag"], "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["concurrency_limit"] == 1
