"""The real Prefect client runs a cached task with a persisted result twice against our server: the second run is Cached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from compat_support import RESULT_MARKER, PrefectRunner, Server, eventually

pytestmark = pytest.mark.compat

SCRIPT = Path(__file__).resolve().parent / "flows" / "cached_flow.py"


def _run(prefect: PrefectRunner, server: Server, marker: Path) -> dict[str, Any]:
    done = prefect.script(SCRIPT, str(marker))
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    assert lines, (
        f"cached_flow.py printed no result (exit {done.returncode})\n{done.stderr[-4000:]}\n"
        f"--- server log\n{server.log_tail()}"
    )
    return json.loads(lines[-1][len(RESULT_MARKER) :])  # type: ignore[no-any-return]


def _task_run(api: httpx.Client, flow_run_id: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        response = api.post(
            "/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}
        )
        assert response.status_code == 200, response.text
        runs = response.json()
        assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED", runs
        return runs[0]  # type: ignore[no-any-return]

    return eventually(read)


def test_a_cached_task_run_twice_by_prefect_is_cached_the_second_time(
    prefect: PrefectRunner, flowplane_server: Server, api: httpx.Client, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    # Prefect keeps its cache records in its own local storage: a fresh folder per test.
    storage = tmp_path / "prefect-storage"
    prefect = PrefectRunner(
        python=prefect.python,
        env=prefect.env | {"PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(storage)},
        cwd=prefect.cwd,
    )
    first = _run(prefect, flowplane_server, marker)
    second = _run(prefect, flowplane_server, marker)
    assert first["result"] == "Completed:16"
    assert second["result"] == "Cached:16"
    assert marker.read_text() == "ran\n"  # the second process never ran the body
    assert len(list(storage.iterdir())) == 1

    first_run = _task_run(api, first["flow_run_id"])
    second_run = _task_run(api, second["flow_run_id"])
    assert first_run["state"]["name"] == "Completed"
    assert second_run["state"]["name"] == "Cached"
    # Prefect keeps cache keys in its result store, not on the task run; both states point
    # at the one record, which flowplane's own State.result() can load too.
    record = first_run["state"]["data"]["storage_key"]
    assert second_run["state"]["data"]["storage_key"] == record
    assert Path(record).parent == storage
    from flowplane.sdk.states import State

    assert State.model_validate(second_run["state"]).result() == {"x": 4, "squared": 16}
    for flow_run_id in (first["flow_run_id"], second["flow_run_id"]):
        flow_run = api.get(f"/flow_runs/{flow_run_id}").json()
        assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]
