"""Releasing Pending runs whose worker died: back to Scheduled, only when no worker of the pool is alive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from flowplane.server.services.pending_release import RELEASED_MESSAGE, PendingRelease


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


def at(app: Any, later: float, after: float = 60.0) -> PendingRelease:
    """The service with its clock ``later`` seconds from now."""
    moment = datetime.now(timezone.utc) + timedelta(seconds=later)
    return PendingRelease(app.state.db, app.state.bus, after_seconds=after, clock=lambda: moment)


async def make_pool(client: Any, name: str) -> None:
    response = await client.post("/work_pools/", json={"name": name, "type": "process"})
    assert response.status_code == 201, response.text


async def pending_run(
    client: Any, pool: str | None, scheduled: datetime | None = None, to: str = "PENDING"
) -> str:
    """A run of ``pool`` (scheduled at ``scheduled``, default now) claimed: moved to ``to``."""
    flow = (await client.post("/flows/", json={"name": "etl"})).json()
    when = scheduled or datetime.now(timezone.utc)
    body: dict[str, Any] = {
        "flow_id": flow["id"],
        "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": when.isoformat()}},
    }
    if pool is not None:
        body["work_pool_name"] = pool
    run = await client.post("/flow_runs/", json=body)
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    moved = await client.post(
        f"/flow_runs/{run_id}/set_state", json={"state": {"type": to}, "force": True}
    )
    assert moved.status_code == 201, moved.text
    return run_id


async def state(client: Any, run_id: str) -> dict[str, Any]:
    return (await client.get(f"/flow_runs/{run_id}")).json()["state"]


async def test_pending_run_of_a_pool_without_live_workers_goes_back_to_its_pool(
    served: tuple[Any, Any],
) -> None:
    client, app = served
    await make_pool(client, "deserted")
    stranded = await pending_run(client, "deserted")
    fresh_service = at(app, later=5)
    assert await fresh_service.run_once() == 0  # Pending for seconds: its process may be starting
    assert (await state(client, stranded))["type"] == "PENDING"

    events = app.state.bus.subscribe("events")
    service = at(app, later=120)
    assert await service.run_once() == 1

    released = await state(client, stranded)
    assert (released["type"], released["name"]) == ("SCHEDULED", "Scheduled")
    assert released["message"] == RELEASED_MESSAGE
    assert datetime.fromisoformat(released["state_details"]["scheduled_time"]) == service.clock()
    assert [e.event for e in events.drain_nowait()] == ["prefect.flow-run.Scheduled"]
    # Any worker polling the pool now gets it.
    poll = await client.post(
        "/work_pools/deserted/get_scheduled_flow_runs",
        json={"scheduled_before": (service.clock() + timedelta(seconds=1)).isoformat()},
    )
    assert [r["flow_run"]["id"] for r in poll.json()] == [stranded]
    assert await service.run_once() == 0


async def test_runs_that_may_still_start_are_left_alone(served: tuple[Any, Any]) -> None:
    client, app = served
    await make_pool(client, "staffed")
    await make_pool(client, "quiet")
    beat = await client.post(
        "/work_pools/staffed/workers/heartbeat",
        json={"name": "alive", "heartbeat_interval_seconds": 600},
    )
    assert beat.status_code == 204, beat.text
    later = datetime.now(timezone.utc) + timedelta(minutes=30)
    kept = {
        "worker alive": await pending_run(client, "staffed"),
        "claimed ahead": await pending_run(client, "quiet", scheduled=later),
        "running": await pending_run(client, "quiet", to="RUNNING"),
        "no pool": await pending_run(client, None),
    }
    assert await at(app, later=120).run_once() == 0
    for why, run_id in kept.items():
        assert (await state(client, run_id))["type"] in ("PENDING", "RUNNING"), why
    assert (await state(client, kept["running"]))["type"] == "RUNNING"


def test_registered_with_settings(flowplane_home: Path) -> None:
    from types import SimpleNamespace

    from flowplane.server.services.registry import build_services
    from flowplane.settings import Settings

    class Bus:
        def subscribe(self, topic: str) -> None:
            return None

    def services(**overrides: Any) -> list[Any]:
        settings = Settings(home=flowplane_home, **overrides)
        return build_services(
            SimpleNamespace(state=SimpleNamespace(db=None, bus=Bus(), settings=settings))
        )

    [release] = [
        s
        for s in services(server_services_pending_release_after_seconds=7)
        if isinstance(s, PendingRelease)
    ]
    assert release.after == timedelta(seconds=7) and release.interval == 10.0
    disabled = services(server_services_pending_release_enabled=False)
    assert not [s for s in disabled if isinstance(s, PendingRelease)]
