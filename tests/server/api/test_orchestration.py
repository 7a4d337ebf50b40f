"""State changes through the API: every rule's answer, bookkeeping, subflows, resume, and events."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
async def served(database_url: str, flowplane_home: Path) -> AsyncIterator[tuple[Any, Any]]:
    """An API client and the FastAPI app behind it (whose event bus the tests listen to)."""
    import httpx
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    application = create_app(
        Settings(home=flowplane_home, database_url=database_url), run_migrations=False
    )
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
            yield http, application


@pytest.fixture
def client(served: tuple[Any, Any]) -> Any:
    return served[0]


@pytest.fixture
def events(served: tuple[Any, Any]) -> Any:
    """Everything published on the event bus from now on."""
    return served[1].state.bus.subscribe("events")


def drain(subscription: Any) -> list[Any]:
    out = []
    while not subscription.queue.empty():
        out.append(subscription.queue.get_nowait())
    return [e for e in out if e.event.startswith("prefect.flow-run.")]


async def make_run(client: Any, **body: Any) -> dict:
    flow = (
        await client.post("/flows/", json={"name": body.pop("flow_name", "etl"), "tags": ["team"]})
    ).json()
    response = await client.post("/flow_runs/", json={"flow_id": flow["id"], **body})
    assert response.status_code == 201, response.text
    return response.json()


async def propose(
    client: Any, run_id: str, type_: str, force: bool = False, kind: str = "flow_runs", **state: Any
):
    response = await client.post(
        f"/{kind}/{run_id}/set_state", json={"state": {"type": type_, **state}, "force": force}
    )
    assert response.status_code in (200, 201), response.text
    return response


async def states(client: Any, run_id: str, kind: str = "flow_run") -> list[dict]:
    response = await client.get(f"/{kind}_states/", params={f"{kind}_id": run_id})
    return response.json()


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_a_run_from_pending_to_completed(client: Any) -> None:
    run = await make_run(client)
    running = await propose(client, run["id"], "RUNNING")
    assert running.status_code == 201
    body = running.json()
    assert body["status"] == "ACCEPT"
    assert body["details"] == {"type": "accept_details"}
    assert body["state"]["state_details"]["flow_run_id"] == run["id"]
    done = await propose(client, run["id"], "COMPLETED", data={"type": "unpersisted"}, message="ok")
    assert done.status_code == 201
    fetched = (await client.get(f"/flow_runs/{run['id']}")).json()
    start, end = ts(body["state"]["timestamp"]), ts(done.json()["state"]["timestamp"])
    assert fetched["run_count"] == 1
    assert ts(fetched["start_time"]) == start
    assert ts(fetched["end_time"]) == end
    assert fetched["total_run_time"] == pytest.approx((end - start).total_seconds(), abs=1e-6)
    assert fetched["state"]["message"] == "ok"
    assert fetched["state"]["data"] == {"type": "unpersisted"}
    assert [s["type"] for s in await states(client, run["id"])] == [
        "PENDING",
        "RUNNING",
        "COMPLETED",
    ]


async def test_terminal_states_stay_terminal_unless_forced(client: Any) -> None:
    run = await make_run(client)
    await propose(client, run["id"], "RUNNING")
    completed = (await propose(client, run["id"], "COMPLETED")).json()["state"]
    aborted = await propose(client, run["id"], "RUNNING")
    assert aborted.status_code == 200
    assert aborted.json()["status"] == "ABORT"
    assert aborted.json()["details"]["type"] == "abort_details"
    assert aborted.json()["state"]["id"] == completed["id"]  # the current state, unchanged
    assert len(await states(client, run["id"])) == 3
    forced = await propose(client, run["id"], "RUNNING", force=True)
    assert forced.status_code == 201
    assert forced.json()["status"] == "ACCEPT"
    fetched = (await client.get(f"/flow_runs/{run['id']}")).json()
    assert (fetched["state_type"], fetched["run_count"], fetched["end_time"]) == (
        "RUNNING",
        2,
        None,
    )


async def test_duplicate_running_is_rejected_with_the_current_state(client: Any) -> None:
    run = await make_run(client)
    first = (await propose(client, run["id"], "RUNNING")).json()
    second = await propose(client, run["id"], "RUNNING")
    assert second.status_code == 200
    assert second.json()["status"] == "REJECT"
    assert second.json()["details"]["type"] == "reject_details"
    assert second.json()["state"]["id"] == first["state"]["id"]
    assert (await client.get(f"/flow_runs/{run['id']}")).json()["run_count"] == 1


async def test_a_future_scheduled_run_waits(client: Any) -> None:
    later = datetime.now(timezone.utc) + timedelta(seconds=90)
    run = await make_run(
        client, state={"type": "SCHEDULED", "state_details": {"scheduled_time": later.isoformat()}}
    )
    submitted = await propose(client, run["id"], "PENDING")
    assert submitted.json()["status"] == "ACCEPT"
    assert ts(submitted.json()["state"]["state_details"]["scheduled_time"]) == later
    waiting = await propose(client, run["id"], "RUNNING")
    assert waiting.status_code == 200
    body = waiting.json()
    assert body["status"] == "WAIT"
    assert body["details"]["type"] == "wait_details"
    assert isinstance(body["details"]["delay_seconds"], int)
    assert 85 <= body["details"]["delay_seconds"] <= 90
    assert [s["type"] for s in await states(client, run["id"])] == ["SCHEDULED", "PENDING"]


async def test_failure_with_retries_left_is_rescheduled_then_retried(client: Any) -> None:
    run = await make_run(client, empirical_policy={"retries": 1, "retry_delay": 0})
    await propose(client, run["id"], "RUNNING")
    failed = await propose(client, run["id"], "FAILED", message="boom")
    assert failed.status_code == 201
    body = failed.json()
    assert body["status"] == "REJECT"
    assert (body["state"]["type"], body["state"]["name"]) == ("SCHEDULED", "AwaitingRetry")
    assert body["state"]["message"] == "boom"
    assert body["state"]["state_details"]["scheduled_time"]
    retrying = (await propose(client, run["id"], "RUNNING")).json()
    assert (retrying["status"], retrying["state"]["name"]) == ("ACCEPT", "Retrying")
    fetched = (await client.get(f"/flow_runs/{run['id']}")).json()
    assert fetched["run_count"] == 2
    assert fetched["empirical_policy"]["retry_type"] == "in_process"
    final = (await propose(client, run["id"], "FAILED")).json()
    assert (final["status"], final["state"]["type"]) == ("ACCEPT", "FAILED")
    names = [s["name"] for s in await states(client, run["id"])]
    assert names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Failed"]


async def test_a_retry_delay_schedules_the_retry_later(client: Any) -> None:
    run = await make_run(client, empirical_policy={"retries": 2, "retry_delay": 60})
    await propose(client, run["id"], "RUNNING")
    retry = (await propose(client, run["id"], "FAILED")).json()["state"]
    delay = ts(retry["state_details"]["scheduled_time"]) - ts(retry["timestamp"])
    assert timedelta(seconds=59) < delay < timedelta(seconds=61)
    assert (await propose(client, run["id"], "RUNNING")).json()["status"] == "WAIT"


async def test_cancelling_only_leads_to_a_terminal_state(client: Any) -> None:
    run = await make_run(client)
    await propose(client, run["id"], "RUNNING")
    assert (await propose(client, run["id"], "CANCELLING")).json()["status"] == "ACCEPT"
    assert (await propose(client, run["id"], "RUNNING")).json()["status"] == "REJECT"
    assert (await propose(client, run["id"], "PAUSED", state_details={"pause_key": "1"})).json()[
        "status"
    ] == "REJECT"
    assert (await propose(client, run["id"], "CANCELLED")).json()["status"] == "ACCEPT"


async def test_cancelling_a_run_that_never_started_cancels_it(client: Any) -> None:
    run = await make_run(
        client,
        state={
            "type": "SCHEDULED",
            "state_details": {"scheduled_time": datetime.now(timezone.utc).isoformat()},
        },
    )
    response = await propose(client, run["id"], "CANCELLING")
    assert response.status_code == 201
    assert response.json()["status"] == "REJECT"
    assert response.json()["state"]["type"] == "CANCELLED"


async def test_pending_is_entered_once(client: Any) -> None:
    run = await make_run(client)
    assert (await propose(client, run["id"], "PENDING")).json()["status"] == "ABORT"
    submitting = await propose(client, run["id"], "PENDING", name="Submitting")
    assert (submitting.json()["status"], submitting.json()["state"]["name"]) == (
        "ACCEPT",
        "Submitting",
    )


async def test_a_retried_request_changes_nothing(client: Any) -> None:
    run = await make_run(client)
    transition = str(uuid.uuid4())
    first = await propose(client, run["id"], "RUNNING", state_details={"transition_id": transition})
    again = await propose(client, run["id"], "RUNNING", state_details={"transition_id": transition})
    assert first.status_code == 201
    assert (again.status_code, again.json()["status"]) == (200, "REJECT")
    assert again.json()["state"]["id"] == first.json()["state"]["id"]


async def test_client_timestamps_are_kept_when_plausible(client: Any) -> None:
    run = await make_run(client)
    started = datetime.now(timezone.utc) - timedelta(milliseconds=1)
    body = (await propose(client, run["id"], "RUNNING", timestamp=started.isoformat())).json()
    assert ts(body["state"]["timestamp"]) == started
    future = datetime.now(timezone.utc) + timedelta(days=1)
    body = (await propose(client, run["id"], "COMPLETED", timestamp=future.isoformat())).json()
    assert ts(body["state"]["timestamp"]) < future


async def test_task_runs_start_only_inside_running_flow_runs(client: Any) -> None:
    run = await make_run(client)
    task = (
        await client.post(
            "/task_runs/", json={"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0"}
        )
    ).json()
    aborted = await propose(client, task["id"], "RUNNING", kind="task_runs")
    assert aborted.status_code == 200
    assert aborted.json()["status"] == "ABORT"
    await propose(client, run["id"], "RUNNING")
    started = await propose(client, task["id"], "RUNNING", kind="task_runs")
    assert (started.status_code, started.json()["status"]) == (201, "ACCEPT")
    assert started.json()["state"]["state_details"]["task_run_id"] == task["id"]
    assert started.json()["state"]["state_details"]["flow_run_id"] == run["id"]
    fetched = (await client.get(f"/task_runs/{task['id']}")).json()
    assert (fetched["run_count"], fetched["flow_run_run_count"]) == (1, 1)
    assert fetched["start_time"] == started.json()["state"]["timestamp"]


async def test_task_run_retries_and_terminal_rules(client: Any) -> None:
    task = (
        await client.post(
            "/task_runs/",
            json={
                "task_key": "t",
                "dynamic_key": "0",
                "empirical_policy": {"retries": 1, "retry_delay": [0]},
            },
        )
    ).json()
    await propose(client, task["id"], "RUNNING", kind="task_runs")
    retry = (await propose(client, task["id"], "FAILED", kind="task_runs")).json()
    assert (retry["status"], retry["state"]["name"]) == ("REJECT", "AwaitingRetry")
    assert (await propose(client, task["id"], "RUNNING", kind="task_runs")).json()["state"][
        "name"
    ] == "Retrying"
    await propose(client, task["id"], "COMPLETED", kind="task_runs")
    assert (await propose(client, task["id"], "RUNNING", kind="task_runs")).json()[
        "status"
    ] == "ABORT"
    fetched = (await client.get(f"/task_runs/{task['id']}")).json()
    assert (fetched["run_count"], fetched["state_type"]) == (2, "COMPLETED")
    assert fetched["end_time"] is not None and fetched["total_run_time"] >= 0


async def test_flow_run_state_changes_are_published_as_events(client: Any, events: Any) -> None:
    run = await make_run(client, tags=["a"])
    await propose(client, run["id"], "RUNNING")
    await propose(client, run["id"], "RUNNING")  # rejected: no event
    await propose(client, run["id"], "COMPLETED", message="done")
    published = drain(events)
    assert [e.event for e in published] == [
        "prefect.flow-run.Pending",
        "prefect.flow-run.Running",
        "prefect.flow-run.Completed",
    ]
    pending, running, completed = published
    assert completed.resource == {
        "prefect.resource.id": f"prefect.flow-run.{run['id']}",
        "prefect.resource.name": run["name"],
        "prefect.run-count": "1",
        "prefect.state-message": "done",
        "prefect.state-name": "Completed",
        "prefect.state-timestamp": completed.occurred.isoformat(),
        "prefect.state-type": "COMPLETED",
    }
    assert completed.related == [
        {
            "prefect.resource.id": f"prefect.flow.{run['flow_id']}",
            "prefect.resource.role": "flow",
            "prefect.resource.name": "etl",
        },
        {"prefect.resource.id": "prefect.tag.a", "prefect.resource.role": "tag"},
        {"prefect.resource.id": "prefect.tag.team", "prefect.resource.role": "tag"},
    ]
    assert completed.payload == {
        "intended": {"from": "RUNNING", "to": "COMPLETED"},
        "initial_state": {"type": "RUNNING", "name": "Running"},
        "validated_state": {"type": "COMPLETED", "name": "Completed", "message": "done"},
    }
    assert pending.payload["intended"] == {"from": None, "to": "PENDING"}
    assert pending.follows is None
    history = await states(client, run["id"])
    assert [e.id for e in published] == [uuid.UUID(s["id"]) for s in history]
    assert running.follows == pending.id and completed.follows == running.id


async def test_subflow_runs_keep_their_parent_task_run_in_step(client: Any, events: Any) -> None:
    parent = await make_run(client, flow_name="parent")
    await propose(client, parent["id"], "RUNNING")
    placeholder = (
        await client.post(
            "/task_runs/",
            json={
                "flow_run_id": parent["id"],
                "task_key": "child-flow",
                "dynamic_key": "0",
                "name": "child-0",
                "tags": ["sub"],
            },
        )
    ).json()
    assert placeholder["state_type"] == "PENDING"
    child = await make_run(client, flow_name="child", parent_task_run_id=placeholder["id"])
    assert child["state"]["state_details"]["task_run_id"] == placeholder["id"]
    await propose(client, child["id"], "RUNNING")
    await propose(client, child["id"], "COMPLETED")

    task = (await client.get(f"/task_runs/{placeholder['id']}")).json()
    child_run = (await client.get(f"/flow_runs/{child['id']}")).json()
    assert (task["state_type"], task["state_name"]) == ("COMPLETED", "Completed")
    assert task["run_count"] == 1
    assert task["start_time"] == child_run["start_time"]
    assert task["end_time"] == child_run["end_time"]
    details = task["state"]["state_details"]
    assert details["child_flow_run_id"] == child["id"]
    assert details["task_run_id"] == placeholder["id"]
    assert details["flow_run_id"] == parent["id"]
    mirrored = await states(client, placeholder["id"], kind="task_run")
    assert [s["type"] for s in mirrored] == ["PENDING", "PENDING", "RUNNING", "COMPLETED"]
    assert all(
        s["state_details"]["task_run_id"] == placeholder["id"]
        for s in await states(client, child["id"])
    )

    by_parent = await client.post(
        "/flow_runs/filter", json={"flow_runs": {"parent_flow_run_id": {"any_": [parent["id"]]}}}
    )
    assert [r["id"] for r in by_parent.json()] == [child["id"]]
    by_task = await client.post(
        "/flow_runs/filter",
        json={"flow_runs": {"parent_task_run_id": {"any_": [placeholder["id"]]}}},
    )
    assert [r["id"] for r in by_task.json()] == [child["id"]]
    subflow_tasks = await client.post(
        "/task_runs/filter", json={"task_runs": {"subflow_runs": {"exists_": True}}}
    )
    assert [t["id"] for t in subflow_tasks.json()] == [placeholder["id"]]

    child_events = [e for e in drain(events) if e.resource_id == f"prefect.flow-run.{child['id']}"]
    assert len(child_events) == 3
    task_related = child_events[-1].related_by_role("task-run")
    assert task_related == [
        {
            "prefect.resource.id": f"prefect.task-run.{placeholder['id']}",
            "prefect.resource.role": "task-run",
            "prefect.resource.name": "child-0",
        }
    ]
    assert {
        "prefect.resource.id": "prefect.tag.sub",
        "prefect.resource.role": "tag",
    } in child_events[-1].related


async def test_subflow_graph(client: Any) -> None:
    parent = await make_run(client, flow_name="parent")
    await propose(client, parent["id"], "RUNNING")

    async def task_run(key: str, inputs: dict) -> dict:
        created = await client.post(
            "/task_runs/",
            json={
                "flow_run_id": parent["id"],
                "task_key": key,
                "dynamic_key": "0",
                "name": key,
                "task_inputs": inputs,
            },
        )
        run = created.json()
        await propose(client, run["id"], "RUNNING", kind="task_runs")
        return run

    first = await task_run("first", {})
    second = await task_run(
        "second",
        {
            "x": [{"input_type": "task_run", "id": first["id"]}],
            "y": [{"input_type": "parameter", "name": "p"}],
        },
    )
    inner = await task_run(
        "inner", {"__parents__": [{"input_type": "task_run", "id": second["id"]}]}
    )
    placeholder = (
        await client.post(
            "/task_runs/",
            json={
                "flow_run_id": parent["id"],
                "task_key": "sub",
                "dynamic_key": "0",
                "name": "sub",
            },
        )
    ).json()
    child = await make_run(
        client, flow_name="child", parent_task_run_id=placeholder["id"], name="kid"
    )
    await propose(client, child["id"], "RUNNING")
    await propose(client, first["id"], "COMPLETED", kind="task_runs")

    graph = (await client.get(f"/flow_runs/{parent['id']}/graph-v2")).json()
    nodes = {node_id: node for node_id, node in graph["nodes"]}
    assert set(nodes) == {first["id"], second["id"], inner["id"], child["id"]}
    assert nodes[child["id"]]["kind"] == "flow-run"
    assert nodes[child["id"]]["label"] == "child / kid"
    assert nodes[second["id"]]["parents"] == [{"id": first["id"]}]
    assert nodes[first["id"]]["children"] == [{"id": second["id"]}]
    assert nodes[inner["id"]]["encapsulating"] == [{"id": second["id"]}]
    assert nodes[first["id"]]["state_type"] == "COMPLETED"
    assert set(graph["root_node_ids"]) == {first["id"], inner["id"], child["id"]}
    assert [s["type"] for s in graph["states"]] == ["PENDING", "RUNNING"]
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    recent = (
        await client.get(f"/flow_runs/{parent['id']}/graph-v2", params={"since": future})
    ).json()
    assert first["id"] not in {node_id for node_id, _ in recent["nodes"]}  # ended before `since`

    v1 = (await client.get(f"/flow_runs/{parent['id']}/graph")).json()
    by_id = {d["id"]: d for d in v1}
    assert set(by_id) == {first["id"], second["id"], inner["id"], placeholder["id"]}
    assert by_id[second["id"]]["upstream_dependencies"] == [
        {"input_type": "task_run", "id": first["id"]}
    ]
    assert by_id[first["id"]]["state"]["type"] == "COMPLETED"


async def test_resume_a_paused_run(client: Any) -> None:
    run = await make_run(client)
    await propose(client, run["id"], "RUNNING")
    not_paused = await client.post(f"/flow_runs/{run['id']}/resume", json={})
    assert (not_paused.status_code, not_paused.json()["status"]) == (200, "ABORT")
    paused = await propose(client, run["id"], "PAUSED", state_details={"pause_key": "1"})
    assert paused.json()["status"] == "ACCEPT"
    resumed = await client.post(f"/flow_runs/{run['id']}/resume", json={})
    assert resumed.status_code == 201
    assert (resumed.json()["status"], resumed.json()["state"]["type"]) == ("ACCEPT", "RUNNING")
    fetched = (await client.get(f"/flow_runs/{run['id']}")).json()
    assert fetched["run_count"] == 1  # resuming continues the same attempt
    assert fetched["empirical_policy"]["pause_keys"] == ["1"]
    again = await propose(client, run["id"], "PAUSED", state_details={"pause_key": "1"})
    assert again.json()["status"] == "REJECT"  # a pause fires once per key


async def test_resume_a_suspended_run_reschedules_it(client: Any) -> None:
    run = await make_run(client, deployment_id=str(uuid.uuid4()))
    await propose(client, run["id"], "RUNNING")
    suspended = await propose(
        client,
        run["id"],
        "PAUSED",
        name="Suspended",
        state_details={"pause_key": "s", "pause_reschedule": True},
    )
    assert suspended.json()["status"] == "ACCEPT"
    resumed = (await client.post(f"/flow_runs/{run['id']}/resume", json={"run_input": None})).json()
    assert (resumed["status"], resumed["state"]["type"], resumed["state"]["name"]) == (
        "ACCEPT",
        "SCHEDULED",
        "Resuming",
    )
    await propose(client, run["id"], "PENDING")
    await propose(client, run["id"], "RUNNING")
    fetched = (await client.get(f"/flow_runs/{run['id']}")).json()
    assert fetched["run_count"] == 1
    assert fetched["empirical_policy"]["resuming"] is False


async def test_resume_after_the_pause_timed_out_fails_the_run(client: Any) -> None:
    run = await make_run(client)
    await propose(client, run["id"], "RUNNING")
    past = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    await propose(
        client, run["id"], "PAUSED", state_details={"pause_key": "1", "pause_timeout": past}
    )
    response = (await client.post(f"/flow_runs/{run['id']}/resume", json={})).json()
    assert (response["status"], response["state"]["type"]) == ("REJECT", "FAILED")


async def test_resume_with_run_input_is_validated_against_the_stored_schema(client: Any) -> None:
    run = await make_run(client)
    await propose(client, run["id"], "RUNNING")
    keyset = {
        "description": "paused-1-description",
        "response": "paused-1-response",
        "schema": "paused-1-schema",
    }
    await propose(
        client, run["id"], "PAUSED", state_details={"pause_key": "1", "run_input_keyset": keyset}
    )
    no_schema = (
        await client.post(f"/flow_runs/{run['id']}/resume", json={"run_input": {"n": 1}})
    ).json()
    assert (no_schema["status"], no_schema["details"]["reason"]) == (
        "REJECT",
        "Run input schema not found.",
    )
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    await client.post(
        f"/flow_runs/{run['id']}/input",
        json={"key": "paused-1-schema", "value": json.dumps(schema)},
    )
    invalid = (
        await client.post(f"/flow_runs/{run['id']}/resume", json={"run_input": {"n": "x"}})
    ).json()
    assert invalid["status"] == "REJECT"
    assert invalid["state"]["type"] == "PAUSED"
    assert (await client.get(f"/flow_runs/{run['id']}")).json()["state_type"] == "PAUSED"
    valid = await client.post(f"/flow_runs/{run['id']}/resume", json={"run_input": {"n": 3}})
    assert (valid.status_code, valid.json()["status"]) == (201, "ACCEPT")
    stored = await client.get(f"/flow_runs/{run['id']}/input/paused-1-response")
    assert json.loads(stored.text) == {"n": 3}


async def test_bad_proposals_are_rejected_and_nothing_is_written(client: Any) -> None:
    run = await make_run(client)
    bad = [
        {},
        {"state": {"type": "SIDEWAYS"}},
        {"state": {"type": "RUNNING", "bogus": 1}},
        {"state": {"type": "RUNNING"}, "force": "maybe"},
        {"state": {"type": "RUNNING", "timestamp": "yesterday"}},
    ]
    for body in bad:
        response = await client.post(f"/flow_runs/{run['id']}/set_state", json=body)
        assert response.status_code == 422, body
        task_response = await client.post(f"/task_runs/{uuid.uuid4()}/set_state", json=body)
        assert task_response.status_code == 422, body
    assert len(await states(client, run["id"])) == 1
    assert (await client.get(f"/flow_runs/{run['id']}")).json()["state_type"] == "PENDING"
