"""The late-runs service: overdue Scheduled flow runs become Late, nothing else changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from flowplane.server.services.late_runs import LateRuns


@pytest.fixture
async def served(database_url: str, flowplane_home: Path) -> AsyncIterator[tuple[Any, Any]]:
    """An API client and its app, without background services (the test runs passes itself)."""
    import httpx
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    application = create_app(
        Settings(home=flowplane_home, database_url=database_url),
        run_migrations=False,
        run_services=False,
    )
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
            yield http, application


def service(app: Any, now: datetime | None = None, after: float = 15.0) -> LateRuns:
    """The service at ``now`` (a state written by it must not predate the run: default now)."""
    clock = (lambda: now) if now is not None else (lambda: datetime.now(timezone.utc))
    return LateRuns(app.state.db, app.state.bus, after_seconds=after, clock=clock)


async def make_run(client: Any, scheduled: datetime | None, state: str = "SCHEDULED") -> str:
    flow = (await client.post("/flows/", json={"name": "nightly"})).json()
    body: dict[str, Any] = {"flow_id": flow["id"]}
    if scheduled is not None:
        body["state"] = {
            "type": state,
            "state_details": {"scheduled_time": scheduled.isoformat()},
        }
    response = await client.post("/flow_runs/", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def read(client: Any, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/flow_runs/{run_id}")
    assert response.status_code == 200
    return response.json()


async def test_overdue_scheduled_run_becomes_late_keeping_its_time(
    served: tuple[Any, Any],
) -> None:
    client, app = served
    now = datetime.now(timezone.utc)
    due = now - timedelta(minutes=5)
    late_id = await make_run(client, due)
    future_id = await make_run(client, now + timedelta(minutes=5))
    just_due_id = await make_run(client, now - timedelta(seconds=5))  # within the 15 s grace
    events = app.state.bus.subscribe("events")

    assert await service(app).run_once() == 1

    late = await read(client, late_id)
    assert (late["state_type"], late["state_name"]) == ("SCHEDULED", "Late")
    assert datetime.fromisoformat(late["state"]["state_details"]["scheduled_time"]) == due
    assert datetime.fromisoformat(late["next_scheduled_start_time"]) == due
    for untouched in (future_id, just_due_id):
        run = await read(client, untouched)
        assert (run["state_type"], run["state_name"]) == ("SCHEDULED", "Scheduled")
    published = [e.event for e in events.drain_nowait()]
    assert published == ["prefect.flow-run.Late"]

    # A second pass finds nothing more to do; the Late run is not marked again.
    assert await service(app).run_once() == 0
    history = (await client.get("/flow_run_states/", params={"flow_run_id": late_id})).json()
    assert [s["name"] for s in history] == ["Scheduled", "Late"]


async def test_running_pending_and_retrying_runs_are_never_late(served: tuple[Any, Any]) -> None:
    client, app = served
    now = datetime.now(timezone.utc)
    past = now - timedelta(hours=1)
    running_id = await make_run(client, past)
    response = await client.post(
        f"/flow_runs/{running_id}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert response.json()["status"] == "ACCEPT"
    pending_id = await make_run(client, None)
    flow = (await client.post("/flows/", json={"name": "nightly"})).json()
    retrying = await client.post(
        "/flow_runs/",
        json={
            "flow_id": flow["id"],
            "state": {
                "type": "SCHEDULED",
                "name": "AwaitingRetry",
                "state_details": {"scheduled_time": past.isoformat()},
            },
        },
    )
    retrying_id = retrying.json()["id"]

    assert await service(app, now + timedelta(hours=2)).run_once() == 0
    assert (await read(client, running_id))["state_type"] == "RUNNING"
    assert (await read(client, pending_id))["state_type"] == "PENDING"
    assert (await read(client, retrying_id))["state_name"] == "AwaitingRetry"


async def test_late_runs_in_batches_and_threshold_setting(served: tuple[Any, Any]) -> None:
    client, app = served
    now = datetime.now(timezone.utc)
    ids = [await make_run(client, now - timedelta(seconds=40 + i)) for i in range(5)]
    # A 60 s threshold: none of them is late yet.
    assert await service(app, after=60).run_once() == 0
    from flowplane.server.services.late_runs import mark_late_runs

    marked = await mark_late_runs(
        app.state.db, app.state.bus, datetime.now(timezone.utc), timedelta(seconds=30), batch_size=2
    )
    assert marked == 5
    assert {(await read(client, i))["state_name"] for i in ids} == {"Late"}


async def test_a_late_run_can_still_start(served: tuple[Any, Any]) -> None:
    client, app = served
    now = datetime.now(timezone.utc)
    run_id = await make_run(client, now - timedelta(minutes=1))
    await service(app).run_once()
    response = await client.post(
        f"/flow_runs/{run_id}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert response.json()["status"] == "ACCEPT"
    assert (await read(client, run_id))["state_type"] == "RUNNING"


def test_registered_with_settings(flowplane_home: Path) -> None:
    from types import SimpleNamespace

    from flowplane.server.services.registry import build_services
    from flowplane.settings import Settings

    def services(**overrides: Any) -> list[Any]:
        app = SimpleNamespace(
            state=SimpleNamespace(
                db=None, bus=_Bus(), settings=Settings(home=flowplane_home, **overrides)
            )
        )
        return build_services(app)

    late = [s for s in services(server_services_late_runs_after_seconds=3) if s.name == "late-runs"]
    assert len(late) == 1 and late[0].after == timedelta(seconds=3)
    assert not [
        s for s in services(server_services_late_runs_enabled=False) if s.name == "late-runs"
    ]


class _Bus:
    def subscribe(self, topic: str) -> None:
        return None
