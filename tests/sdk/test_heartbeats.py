"""Flow-run heartbeats from the engine: sent while a run runs, shaped like Prefect's, stopped at the end."""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from sdk_support import eventually

from flowplane import flow
from flowplane.sdk import heartbeats


class Sink:
    """An event sink like the background writer: it keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def emit_event(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)

    def count(self) -> int:
        with self.lock:
            return len(self.events)


def record(sink: Sink) -> tuple[Any, Any]:
    run_id, flow_id, deployment_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rec = SimpleNamespace(
        id=run_id,
        name="brave-otter",
        writer=sink,
        related=[
            {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.role": "flow-run",
            },
            {"prefect.resource.id": f"prefect.flow.{flow_id}", "prefect.resource.role": "flow"},
        ],
    )
    run = SimpleNamespace(deployment_id=deployment_id, tags=["b", "a"])
    return rec, run


def test_heartbeats_start_at_once_repeat_and_stop() -> None:
    sink = Sink()
    rec, run = record(sink)
    beat = heartbeats.start(0.05, rec, run)
    assert beat is not None
    assert sink.count() == 1  # the first one is sent on start
    assert eventually(lambda: sink.count() >= 4, timeout=10)
    heartbeats.stop(beat)
    time.sleep(0.1)  # let a beat already being sent land
    stopped_at = sink.count()
    time.sleep(0.3)
    assert sink.count() == stopped_at

    event = sink.events[0]
    assert event["event"] == "prefect.flow-run.heartbeat"
    assert event["resource"] == {
        "prefect.resource.id": f"prefect.flow-run.{rec.id}",
        "prefect.resource.name": "brave-otter",
    }
    roles = [(r["prefect.resource.role"], r["prefect.resource.id"]) for r in event["related"]]
    assert roles == [
        ("flow", rec.related[1]["prefect.resource.id"]),
        ("deployment", f"prefect.deployment.{run.deployment_id}"),
        ("tag", "prefect.tag.a"),
        ("tag", "prefect.tag.b"),
    ]
    assert event["payload"] == {"heartbeat_interval_seconds": 0.05}
    assert len({e["id"] for e in sink.events}) == len(sink.events)


def test_many_runs_share_one_thread_with_their_own_intervals() -> None:
    fast, slow = Sink(), Sink()
    beats = [heartbeats.start(0.05, *record(fast)), heartbeats.start(60, *record(slow))]
    try:
        assert eventually(lambda: fast.count() >= 3, timeout=10)
        assert slow.count() == 1
        names = [t.name for t in threading.enumerate()]
        assert names.count("flowplane-heartbeats") == 1
    finally:
        for beat in beats:
            heartbeats.stop(beat)


@pytest.mark.parametrize("interval", [None, 0])
def test_heartbeats_off(interval: float | None) -> None:
    sink = Sink()
    assert heartbeats.start(interval, *record(sink)) is None
    heartbeats.stop(None)
    assert sink.count() == 0


def test_a_flow_run_heartbeats_while_it_runs(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWPLANE_FLOWS_HEARTBEAT_FREQUENCY", "0.1")

    @flow
    def slow() -> str:
        time.sleep(0.6)
        return "ok"

    state = slow(return_state=True)
    assert state.is_completed()
    run_id = state.state_details.flow_run_id

    def heartbeats_of_run() -> list[Any]:
        page = client.read_events(
            filter={
                "event": {"name": ["prefect.flow-run.heartbeat"]},
                "resource": {"id": [f"prefect.flow-run.{run_id}"]},
            },
            limit=50,
        )
        return page.events if len(page.events) >= 3 else []

    beats = eventually(heartbeats_of_run, timeout=10)
    assert len(beats) >= 3
    assert beats[0].payload == {"heartbeat_interval_seconds": 0.1}
