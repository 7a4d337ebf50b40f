"""Flows run by the real Prefect 3 client are recorded by our server: flow runs, task runs, states, logs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from compat_support import ScenarioRun, eventually

pytestmark = pytest.mark.compat

# scenario -> (flow name, final state type)
FLOW_RUNS = {
    "etl": ("compat-etl", "COMPLETED"),
    "failing": ("compat-failing", "FAILED"),
    "parent": ("compat-parent", "COMPLETED"),
    "child": ("compat-child", "COMPLETED"),
}

PLAIN = [("PENDING", "Pending"), ("RUNNING", "Running"), ("COMPLETED", "Completed")]
RETRIED = [
    ("PENDING", "Pending"),
    ("RUNNING", "Running"),
    ("SCHEDULED", "AwaitingRetry"),
    ("RUNNING", "Retrying"),
    ("COMPLETED", "Completed"),
]
FAILED = [("PENDING", "Pending"), ("RUNNING", "Running"), ("FAILED", "Failed")]

# (scenario, task key) -> (final state type, run_count, state history)
TASK_RUNS: dict[tuple[str, str], tuple[str, int, list[tuple[str, str]]]] = {
    ("etl", "extract"): ("COMPLETED", 1, PLAIN),
    **{("etl", f"square-{x}"): ("COMPLETED", 1, PLAIN) for x in range(4)},
    ("etl", "flaky_sum"): ("COMPLETED", 2, RETRIED),
    ("etl", "load"): ("COMPLETED", 1, PLAIN),
    ("failing", "explode"): ("FAILED", 1, FAILED),
    ("parent", "prepare"): ("COMPLETED", 1, PLAIN),
    ("child", "double"): ("COMPLETED", 1, PLAIN),
}

# scenario -> [(message, level, task key or None for a flow-run log)]
LOG_LINES: dict[str, list[tuple[str, int, str | None]]] = {
    "etl": [
        ("etl flow starting with 4 rows", 20, None),
        ("extracting 4 rows", 20, "extract"),
        ("flaky_sum recovered on attempt 2", 30, "flaky_sum"),
        ("loaded total=14", 20, "load"),  # a print() under log_prints=True
        ("etl flow finished total=14", 20, None),  # a print() in the flow body
    ],
    "failing": [("about to explode", 40, "explode")],
    "child": [("child flow got 21", 20, None)],
}


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body, after checking the status (the message names the request and the answer)."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url} answered {response.status_code}, "
        f"expected {status}: {response.text[:800]}"
    )
    return response.json()


def history(api: httpx.Client, kind: str, run_id: str) -> list[tuple[str, str]]:
    """(type, name) of every recorded state of a flow or task run, oldest first."""
    states = ok(api.get(f"/{kind}_run_states/", params={f"{kind}_run_id": run_id}))
    return [(s["type"], s["name"]) for s in sorted(states, key=lambda s: s["timestamp"])]


def test_every_scenario_ran_without_client_errors(scenarios: ScenarioRun) -> None:
    assert scenarios.result["errors"] == {}, "\n\n".join(scenarios.result["errors"].values())
    assert set(scenarios.result["flows"]) == set(FLOW_RUNS), scenarios.diagnostics()


@pytest.mark.parametrize("scenario", list(FLOW_RUNS))
def test_flow_run_is_recorded_with_its_final_state_and_history(
    api: httpx.Client, scenarios: ScenarioRun, scenario: str
) -> None:
    flow_name, final = FLOW_RUNS[scenario]
    record = scenarios.flow(scenario)
    run = ok(api.get(f"/flow_runs/{record['flow_run_id']}"))
    assert run["name"] == record["name"]
    assert ok(api.get(f"/flows/{run['flow_id']}"))["name"] == flow_name
    if scenario == "etl":  # the only tagged scenario
        assert {"compat", scenarios.tag} <= set(run["tags"])
    assert run["state_type"] == final
    assert run["state"]["type"] == final
    assert run["run_count"] == 1
    expected = [("PENDING", "Pending"), ("RUNNING", "Running"), (final, final.capitalize())]
    assert history(api, "flow", record["flow_run_id"]) == expected


def test_flow_runs_filter_by_tag_finds_the_tagged_run(
    api: httpx.Client, scenarios: ScenarioRun
) -> None:
    body = {
        "flow_runs": {"tags": {"all_": ["compat", scenarios.tag]}},
        "sort": "EXPECTED_START_TIME_DESC",
    }
    runs = ok(api.post("/flow_runs/filter", json=body))
    assert [run["id"] for run in runs] == [scenarios.flow("etl")["flow_run_id"]]


@pytest.mark.parametrize(("scenario", "key"), list(TASK_RUNS))
def test_task_run_is_recorded_from_events(
    api: httpx.Client, scenarios: ScenarioRun, scenario: str, key: str
) -> None:
    final, run_count, states = TASK_RUNS[(scenario, key)]
    record = scenarios.flow(scenario)
    task = record["task_runs"][key]

    def recorded() -> dict[str, Any]:
        run = ok(api.get(f"/task_runs/{task['id']}"))
        assert run["state_type"] == final, (
            f"task run {key} is {run['state_type']}, expected {final}"
        )
        assert history(api, "task", task["id"]) == states
        return run

    run = eventually(recorded)
    assert run["flow_run_id"] == record["flow_run_id"]
    assert run["name"] == task["name"]
    assert run["run_count"] == run_count
    if scenario == "etl":  # tags of the flow run's context are inherited by its task runs
        assert {"compat", scenarios.tag} <= set(run["tags"])
    if key == "extract":
        assert "extract-step" in run["tags"]


def test_task_run_events_read_back_from_their_states(
    api: httpx.Client, scenarios: ScenarioRun
) -> None:
    """Prefect's client sends a task-run event per state change; the server keeps the state
    rows only and gives the events back from them, as the client sent them."""
    record = scenarios.flow("etl")
    flow_run = f"prefect.flow-run.{record['flow_run_id']}"
    tasks = record["task_runs"].values()
    expected = {
        state["id"]: (task, state)
        for task in tasks
        for state in ok(api.get("/task_run_states/", params={"task_run_id": task["id"]}))
    }

    def read_back() -> list[dict[str, Any]]:
        flt = {"event": {"prefix": ["prefect.task-run."]}, "related": {"id": [flow_run]}}
        events = ok(api.post("/events/filter", json={"filter": flt, "limit": 200}))["events"]
        assert {e["id"] for e in events} == set(expected)
        return list(events)

    for event in eventually(read_back):
        task, state = expected[event["id"]]
        assert event["event"] == f"prefect.task-run.{state['name']}"
        assert event["resource"]["prefect.resource.id"] == f"prefect.task-run.{task['id']}"
        assert event["resource"]["prefect.resource.name"] == task["name"]
        assert event["resource"]["prefect.state-type"] == state["type"]
        roles = {r["prefect.resource.role"] for r in event["related"]}
        assert {"flow-run", "flow", "tag"} <= roles


def test_task_runs_filter_by_flow_run_lists_each_task_once(
    api: httpx.Client, scenarios: ScenarioRun
) -> None:
    record = scenarios.flow("etl")
    expected = {task["id"] for task in record["task_runs"].values()}
    body = {"flow_runs": {"id": {"any_": [record["flow_run_id"]]}}}

    def listed() -> None:
        runs = ok(api.post("/task_runs/filter", json=body))
        assert sorted(run["id"] for run in runs) == sorted(expected)
        assert ok(api.post("/task_runs/count", json=body)) == len(expected)

    eventually(listed)


def test_subflow_points_at_a_task_run_of_its_parent(
    api: httpx.Client, scenarios: ScenarioRun
) -> None:
    parent, child = scenarios.flow("parent"), scenarios.flow("child")
    child_run = ok(api.get(f"/flow_runs/{child['flow_run_id']}"))
    assert child_run["parent_task_run_id"] is not None
    parent_task = ok(api.get(f"/task_runs/{child_run['parent_task_run_id']}"))
    assert parent_task["flow_run_id"] == parent["flow_run_id"]
    assert parent_task["name"].startswith("compat-child")
    # the client looks a subflow up by its parent task run when a parent flow run is rerun
    body = {"flow_runs": {"parent_task_run_id": {"any_": [parent_task["id"]]}}}
    assert [run["id"] for run in ok(api.post("/flow_runs/filter", json=body))] == [
        child["flow_run_id"]
    ]


def test_subflow_parent_task_run_follows_the_subflow_to_completed(
    api: httpx.Client, scenarios: ScenarioRun
) -> None:
    child_run = ok(api.get(f"/flow_runs/{scenarios.flow('child')['flow_run_id']}"))

    def completed() -> None:
        parent_task = ok(api.get(f"/task_runs/{child_run['parent_task_run_id']}"))
        assert parent_task["state_type"] == "COMPLETED", parent_task["state"]

    eventually(completed)


@pytest.mark.parametrize("scenario", list(LOG_LINES))
def test_logs_are_recorded_with_levels_and_run_ids(
    api: httpx.Client, scenarios: ScenarioRun, scenario: str
) -> None:
    record = scenarios.flow(scenario)
    body = {"logs": {"flow_run_id": {"any_": [record["flow_run_id"]]}}, "sort": "TIMESTAMP_ASC"}

    def logged() -> list[dict[str, Any]]:
        logs = ok(api.post("/logs/filter", json=body))
        messages = [log["message"] for log in logs]
        for message, _, _ in LOG_LINES[scenario]:
            assert message in messages, f"{message!r} not among {messages}"
        return logs

    logs = eventually(logged)
    by_message = {log["message"]: log for log in logs}
    for message, level, task_key in LOG_LINES[scenario]:
        log = by_message[message]
        task_run_id = record["task_runs"][task_key]["id"] if task_key else None
        assert (log["level"], log["flow_run_id"], log["task_run_id"]) == (
            level,
            record["flow_run_id"],
            task_run_id,
        ), log
    timestamps = [log["timestamp"] for log in logs]
    assert timestamps == sorted(timestamps)


def test_logs_filter_by_task_run(api: httpx.Client, scenarios: ScenarioRun) -> None:
    task = scenarios.flow("etl")["task_runs"]["extract"]
    body = {"logs": {"task_run_id": {"any_": [task["id"]]}}}

    def logged() -> None:
        messages = [log["message"] for log in ok(api.post("/logs/filter", json=body))]
        assert "extracting 4 rows" in messages
        assert "etl flow starting with 4 rows" not in messages

    eventually(logged)
