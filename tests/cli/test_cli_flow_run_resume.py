"""``flowplane flow-run resume``: resumes a paused run with checked input; every refusal is one line, exit 1, and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cli_harness import ok, ok_json, one_line_error

from flowplane.client import get_client
from flowplane.embedded import shutdown_embedded_servers

SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}},
    "required": ["approved"],
}


@pytest.fixture
def paused(flowplane_home: Path) -> dict[str, str]:
    """Runs in the home database: paused waiting for input, paused plainly, expired, running."""
    keyset = {
        "description": "paused-1-description",
        "response": "paused-1-response",
        "schema": "paused-1-schema",
    }
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)).isoformat()
    with get_client(sync_client=True) as client:
        flow = client.create_flow_from_name("approvals")

        def run(details: dict[str, Any] | None) -> str:
            created = client.create_flow_run(flow, state={"type": "RUNNING"})
            if details is not None:
                result = client.set_flow_run_state(
                    created.id,
                    {"type": "PAUSED", "name": "Paused", "state_details": details},
                )
                assert result.status.value == "ACCEPT"
            return str(created.id)

        waiting = run({"pause_key": "1", "run_input_keyset": keyset})
        client.create_flow_run_input(waiting, keyset["schema"], json.dumps(SCHEMA))
        plain = run({"pause_key": "1"})
        expired = run({"pause_key": "1", "pause_timeout": past})
        running = run(None)
    shutdown_embedded_servers()  # the CLI processes open the database themselves
    return {"waiting": waiting, "plain": plain, "expired": expired, "running": running}


def _state(run_id: str) -> str:
    return str(ok_json("flow-run", "inspect", run_id)["state"]["type"])


def test_resume_with_input_checked_against_the_schema(paused: dict[str, str]) -> None:
    run = paused["waiting"]
    error = one_line_error("flow-run", "resume", run, "--input", '{"approved": "yes"}')
    assert error == f"Error: Flow run {run} was not resumed: Reason: 'yes' is not of type 'boolean'"
    error = one_line_error("flow-run", "resume", run)
    assert error == (
        f"Error: Flow run {run} was not resumed: Reason: 'approved' is a required property"
    )
    assert _state(run) == "PAUSED"
    assert ok("flow-run", "resume", run, "-i", '{"approved": true}').strip() == (
        f"Flow run {run} resumed."
    )
    assert _state(run) == "RUNNING"
    with get_client(sync_client=True) as client:
        assert json.loads(client.read_flow_run_input(run, "paused-1-response")) == {
            "approved": True
        }


def test_resume_without_input(paused: dict[str, str]) -> None:
    run = paused["plain"]
    assert ok("flow-run", "resume", run).strip() == f"Flow run {run} resumed."
    assert _state(run) == "RUNNING"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            "{",
            "Error: --input is not valid JSON: Expecting property name enclosed in double quotes",
        ),
        ("[1, 2]", "Error: --input must be a JSON object"),
        ('"text"', "Error: --input must be a JSON object"),
    ],
)
def test_bad_input_is_refused_before_asking_the_server(
    paused: dict[str, str], given: str, message: str
) -> None:
    run = paused["waiting"]
    assert one_line_error("flow-run", "resume", run, "--input", given).startswith(message)
    assert _state(run) == "PAUSED"


def test_runs_that_cannot_resume(paused: dict[str, str]) -> None:
    running = paused["running"]
    assert one_line_error("flow-run", "resume", running) == (
        f"Error: Flow run {running} is not paused (it is Running)."
    )
    expired = paused["expired"]
    assert one_line_error("flow-run", "resume", expired) == (
        f"Error: Flow run {expired} can no longer be resumed: its pause timed out."
    )
    assert _state(expired) == "FAILED"
    missing = str(uuid.uuid4())
    assert one_line_error("flow-run", "resume", missing) == f"Error: Flow run {missing} not found."
    assert "is not a valid flow run id" in one_line_error("flow-run", "resume", "nope")
