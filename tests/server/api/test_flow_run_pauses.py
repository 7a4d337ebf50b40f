"""Pausing and resuming through the API: resume with validated input, refusals that change nothing, and the pause-expiration service."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from flowplane.server.services.pause_expirations import (
    EXPIRED_MESSAGE,
    PauseExpirations,
    fail_expired_pauses,
)

KEYSET = {
    "description": "paused-1-description",
    "response": "paused-1-response",
    "schema": "paused-1-schema",
}
SCHEMA = {
    "title": "Approval",
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["approved"],
}


@pytest.fixture
async def served(database_url: str, flowplane_home: Path) -> AsyncIterator[tuple[Any, Any]]:
    """The app (for its database, bus and services) and an HTTP client on it.

    The app's own pause-expiration service is off, so the tests decide when pauses expire.
    """
    import httpx
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    settings = Settings(
        home=flowplane_home,
        database_url=database_url,
        server_services_pause_expirations_enabled=False,
    )
    application = create_app(settings, run_migrations=False)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
            yield application, http


@pytest.fixture
def client(served: tuple[Any, Any]) -> Any:
    return served[1]


async def _running_run(client: Any) -> str:
    flow = (await client.post("/flows/", json={"name": f"f-{uuid.uuid4().hex[:8]}"})).json()
    run = await client.post(
        "/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "RUNNING"}}
    )
    assert run.status_code == 201
    return str(run.json()["id"])


async def _pause(
    client: Any,
    run_id: str,
    *,
    key: str = "1",
    timeout: datetime | None = None,
    keyset: dict[str, str] | None = None,
) -> dict[str, Any]:
    details: dict[str, Any] = {"pause_key": key}
    if timeout is not None:
        details["pause_timeout"] = timeout.isoformat()
    if keyset is not None:
        details["run_input_keyset"] = keyset
    answer = await client.post(
        f"/flow_runs/{run_id}/set_state",
        json={"state": {"type": "PAUSED", "name": "Paused", "state_details": details}},
    )
    assert answer.json()["status"] == "ACCEPT", answer.text
    return dict(answer.json())


async def _state(client: Any, run_id: str) -> dict[str, Any]:
    return dict((await client.get(f"/flow_runs/{run_id}")).json()["state"])


async def test_resume_without_input_goes_back_to_running(client) -> None:
    run_id = await _running_run(client)
    await _pause(client, run_id)
    answer = await client.post(f"/flow_runs/{run_id}/resume", json={})
    assert answer.status_code == 201
    assert answer.json()["status"] == "ACCEPT"
    assert (await _state(client, run_id))["type"] == "RUNNING"
    run = (await client.get(f"/flow_runs/{run_id}")).json()
    assert run["empirical_policy"]["pause_keys"] == ["1"]
    # The same pause key cannot fire twice in one attempt.
    again = await client.post(
        f"/flow_runs/{run_id}/set_state",
        json={"state": {"type": "PAUSED", "state_details": {"pause_key": "1"}}},
    )
    assert again.json()["status"] == "REJECT"
    assert (await _state(client, run_id))["type"] == "RUNNING"


async def test_resume_validates_input_against_the_stored_schema(client) -> None:
    run_id = await _running_run(client)
    await _pause(client, run_id, keyset=KEYSET)
    url = f"/flow_runs/{run_id}/input"
    stored = await client.post(url, json={"key": KEYSET["schema"], "value": json.dumps(SCHEMA)})
    assert stored.status_code == 201

    for bad, words in (
        ({"approved": "yes"}, "is not of type 'boolean'"),
        (None, "'approved' is a required property"),
    ):
        answer = (await client.post(f"/flow_runs/{run_id}/resume", json={"run_input": bad})).json()
        assert answer["status"] == "REJECT"
        assert words in answer["details"]["reason"]
        # Refused: still paused, and no answer stored.
        assert (await _state(client, run_id))["type"] == "PAUSED"
        assert (await client.get(f"{url}/{KEYSET['response']}")).status_code == 404

    good = {"approved": True, "note": "ship it"}
    answer = await client.post(f"/flow_runs/{run_id}/resume", json={"run_input": good})
    assert answer.json()["status"] == "ACCEPT"
    assert (await _state(client, run_id))["type"] == "RUNNING"
    stored_answer = await client.get(f"{url}/{KEYSET['response']}")
    assert json.loads(stored_answer.text) == good


async def test_resume_refuses_without_a_stored_schema(client) -> None:
    run_id = await _running_run(client)
    await _pause(client, run_id, keyset=KEYSET)
    answer = (
        await client.post(f"/flow_runs/{run_id}/resume", json={"run_input": {"approved": True}})
    ).json()
    assert answer["status"] == "REJECT"
    assert answer["details"]["reason"] == "Run input schema not found."
    assert (await _state(client, run_id))["type"] == "PAUSED"


async def test_resume_of_a_run_that_is_not_paused_is_aborted(client) -> None:
    run_id = await _running_run(client)
    answer = await client.post(f"/flow_runs/{run_id}/resume", json={})
    assert answer.status_code == 200
    assert answer.json()["status"] == "ABORT"
    assert answer.json()["details"]["reason"] == "Cannot resume a flow run that is not paused."
    assert (await _state(client, run_id))["type"] == "RUNNING"


async def test_resume_after_the_pause_timed_out_fails_the_run(client) -> None:
    run_id = await _running_run(client)
    await _pause(client, run_id, timeout=datetime.now(timezone.utc) - timedelta(seconds=1))
    answer = (await client.post(f"/flow_runs/{run_id}/resume", json={})).json()
    assert answer["status"] == "REJECT"
    assert answer["state"]["type"] == "FAILED"
    assert (await _state(client, run_id))["type"] == "FAILED"


async def test_only_running_flows_pause(client) -> None:
    flow = (await client.post("/flows/", json={"name": "pending-flow"})).json()
    run = (await client.post("/flow_runs/", json={"flow_id": flow["id"]})).json()
    answer = await client.post(
        f"/flow_runs/{run['id']}/set_state",
        json={"state": {"type": "PAUSED", "state_details": {"pause_key": "1"}}},
    )
    assert answer.json()["status"] == "REJECT"
    assert "not currently running" in answer.json()["details"]["reason"]


async def test_suspending_a_run_without_a_deployment_is_aborted(client) -> None:
    run_id = await _running_run(client)
    answer = await client.post(
        f"/flow_runs/{run_id}/set_state",
        json={
            "state": {
                "type": "PAUSED",
                "name": "Suspended",
                "state_details": {"pause_key": "1", "pause_reschedule": True},
            }
        },
    )
    assert answer.json()["status"] == "ABORT"
    assert answer.json()["details"]["reason"] == "Cannot suspend flows without a deployment."
    assert (await _state(client, run_id))["type"] == "RUNNING"


# --- the pause-expiration service ----------------------------------------------------------


async def test_expired_pauses_fail_and_others_are_left_alone(served, client) -> None:
    app = served[0]
    now = datetime.now(timezone.utc)
    expired = await _running_run(client)
    await _pause(client, expired, timeout=now + timedelta(seconds=30))
    waiting = await _running_run(client)
    await _pause(client, waiting, timeout=now + timedelta(hours=1))
    forever = await _running_run(client)
    await _pause(client, forever)  # no timeout
    running = await _running_run(client)

    db = app.state.db
    # Nothing has expired yet.
    assert await fail_expired_pauses(db, now) == 0
    later = now + timedelta(minutes=1)
    assert await fail_expired_pauses(db, later) == 1
    state = await _state(client, expired)
    assert state["type"] == "FAILED"
    assert state["message"] == EXPIRED_MESSAGE
    assert (await _state(client, waiting))["type"] == "PAUSED"
    assert (await _state(client, forever))["type"] == "PAUSED"
    assert (await _state(client, running))["type"] == "RUNNING"
    # A second pass finds nothing more to do.
    assert await fail_expired_pauses(db, later) == 0
    # A resume comes too late now.
    answer = (await client.post(f"/flow_runs/{expired}/resume", json={})).json()
    assert answer["status"] == "ABORT"


async def test_the_service_pages_through_many_paused_runs(served, client) -> None:
    app = served[0]
    now = datetime.now(timezone.utc)
    ids = []
    for _ in range(5):
        run_id = await _running_run(client)
        await _pause(client, run_id, timeout=now + timedelta(seconds=5))
        ids.append(run_id)
    db = app.state.db
    failed = await fail_expired_pauses(db, now + timedelta(seconds=10), batch_size=2)
    assert failed == 5
    for run_id in ids:
        assert (await _state(client, run_id))["type"] == "FAILED"


async def test_the_service_publishes_the_failure(served, client) -> None:
    app = served[0]
    run_id = await _running_run(client)
    await _pause(client, run_id, timeout=datetime.now(timezone.utc) - timedelta(seconds=1))
    state = app.state
    service = PauseExpirations(state.db, state.bus, interval=0.1)
    assert await service.run_once() == 1
    for running in state.services.services:
        await running.flush()
    events = (
        await client.post(
            "/events/filter",
            json={"filter": {"resource": {"id": [f"prefect.flow-run.{run_id}"]}}, "limit": 50},
        )
    ).json()["events"]
    assert "prefect.flow-run.Failed" in {e["event"] for e in events}


def test_the_service_is_registered_with_its_interval(tmp_path) -> None:
    from types import SimpleNamespace

    from flowplane.server.services.registry import build_services
    from flowplane.settings import Settings

    def services(**overrides: Any) -> list[Any]:
        settings = Settings(home=tmp_path, **overrides)
        state = SimpleNamespace(db=None, bus=SimpleNamespace(subscribe=lambda *a, **k: None))
        app = SimpleNamespace(state=SimpleNamespace(**vars(state), settings=settings))
        return build_services(app)

    found = [
        s
        for s in services(server_services_pause_expirations_loop_seconds=0.5)
        if isinstance(s, PauseExpirations)
    ]
    assert [s.interval for s in found] == [0.5]
    disabled = services(server_services_pause_expirations_enabled=False)
    assert not any(isinstance(s, PauseExpirations) for s in disabled)


@pytest.mark.parametrize("bad", [0, -1])
def test_the_interval_must_be_positive(tmp_path, bad: float) -> None:
    from pydantic import ValidationError

    from flowplane.settings import Settings

    with pytest.raises(ValidationError):
        Settings(home=tmp_path, server_services_pause_expirations_loop_seconds=bad)
