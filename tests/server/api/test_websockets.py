"""Websockets against a real uvicorn server: events in and out, logs out, and authentication."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from flowplane.server.db import tables as t
from flowplane.server.db.session import Database

PREFECT = [Subprotocol("prefect")]


class Served:
    """A uvicorn server running the app in a thread, on a free 127.0.0.1 port."""

    def __init__(self, database_url: str, home: Path, auth_string: str | None = None) -> None:
        import uvicorn

        from flowplane.server.app import create_app
        from flowplane.settings import Settings

        settings = Settings(
            home=home, database_url=database_url, server_api_auth_string=auth_string
        )
        app = create_app(settings, run_migrations=False)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.http_url = f"http://127.0.0.1:{port}/api"
        self.ws_url = f"ws://127.0.0.1:{port}/api"
        self.auth_headers = (
            {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
            if auth_string
            else {}
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.socket.close()

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.http_url, headers=self.auth_headers, timeout=10)


@pytest.fixture
def server(database_url: str, flowplane_home: Path) -> Iterator[Served]:
    served = Served(database_url, flowplane_home)
    served.start()
    yield served
    served.stop()


@pytest.fixture
def secured(database_url: str, flowplane_home: Path) -> Iterator[Served]:
    served = Served(database_url, flowplane_home, auth_string="s3cret")
    served.start()
    yield served
    served.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def authenticate(ws: ClientConnection, token: str | None = "anything") -> dict[str, Any]:
    await ws.send(json.dumps({"type": "auth", "token": token}))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


def event(name: str, **kwargs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "event": name,
        "occurred": dt.datetime.now(dt.timezone.utc).isoformat(),
        "resource": {"prefect.resource.id": f"test.{name}"},
    }
    body.update(kwargs)
    return body


def task_run_event(
    task_run_id: uuid.UUID, flow_run_id: uuid.UUID, state_type: str, seconds: float
) -> dict[str, Any]:
    occurred = (
        dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1) + dt.timedelta(seconds=seconds)
    )
    name = state_type.title()
    return {
        "id": str(uuid.uuid4()),
        "occurred": occurred.isoformat(),
        "event": f"prefect.task-run.{name}",
        "resource": {
            "prefect.resource.id": f"prefect.task-run.{task_run_id}",
            "prefect.resource.name": "add-0",
            "prefect.orchestration": "client",
        },
        "related": [
            {
                "prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        ],
        "payload": {
            "intended": {"from": None, "to": state_type},
            "initial_state": None,
            "validated_state": {
                "type": state_type,
                "name": name,
                "message": None,
                "state_details": {},
                "data": None,
            },
            "task_run": {
                "name": "add-0",
                "task_key": "add-1",
                "dynamic_key": "0",
                "tags": [],
                "empirical_policy": {},
            },
        },
    }


async def stored_event_names(http: httpx.AsyncClient) -> list[str]:
    response = await http.post("/events/filter", json={"filter": {"order": "ASC"}})
    return [e["event"] for e in response.json()["events"]]


async def test_events_in_stores_events_and_records_task_runs(
    server: Served, database_url: str
) -> None:
    db = Database(database_url)
    try:
        async with db.session() as session:
            flow = t.Flow(name="ws-flow")
            session.add(flow)
            await session.flush()
            flow_run_id = uuid.uuid4()
            session.add(t.FlowRun(id=flow_run_id, flow_id=flow.id, name="ws-run"))
        task_run_id = uuid.uuid4()

        async with connect(f"{server.ws_url}/events/in", subprotocols=PREFECT) as ws:
            assert ws.subprotocol == "prefect"
            assert await authenticate(ws) == {"type": "auth_success"}
            for seconds, state in [(2, "COMPLETED"), (0, "PENDING"), (1, "RUNNING")]:
                await ws.send(json.dumps(task_run_event(task_run_id, flow_run_id, state, seconds)))
            await ws.send("this is not an event")  # skipped, the connection stays up
            await ws.send(json.dumps(event("custom.hello")))
            await ws.ping()

        async def recorded() -> bool:
            async with db.read_session() as session:
                run = await session.get(t.TaskRun, task_run_id)
            return run is not None and run.state_type == "COMPLETED" and run.run_count == 1

        await eventually(recorded)
        async with server.http() as http:

            async def stored() -> bool:
                return len(await stored_event_names(http)) == 4

            await eventually(stored)
            assert (await stored_event_names(http))[-1] == "custom.hello"
        async with db.read_session() as session:
            states = (
                await session.execute(
                    sa.select(t.TaskRunState.type).where(t.TaskRunState.task_run_id == task_run_id)
                )
            ).scalars()
            assert sorted(states) == ["COMPLETED", "PENDING", "RUNNING"]
    finally:
        await db.dispose()


async def test_events_in_without_the_subprotocol_needs_no_handshake(server: Served) -> None:
    async with connect(f"{server.ws_url}/events/in") as ws:
        await ws.send(json.dumps(event("legacy.client")))
    async with server.http() as http:

        async def stored() -> bool:
            return await stored_event_names(http) == ["legacy.client"]

        await eventually(stored)


async def test_events_out_streams_matching_events_only(server: Served) -> None:
    async with (
        connect(f"{server.ws_url}/events/out", subprotocols=PREFECT) as ws,
        server.http() as http,
    ):
        assert await authenticate(ws) == {"type": "auth_success"}
        await ws.send(json.dumps({"type": "filter", "filter": {"event": {"prefix": ["match."]}}}))
        await asyncio.sleep(0.2)  # let the server subscribe; the backfill is empty
        first, other, last = event("match.one"), event("other.two"), event("match.three")
        assert (await http.post("/events", json=[first, other])).status_code == 204
        assert (await http.post("/events", json=[last])).status_code == 204
        got = [await receive(ws), await receive(ws)]
    assert [m["type"] for m in got] == ["event", "event"]
    # "other.two" was published between the two and never arrived.
    assert [m["event"]["event"] for m in got] == ["match.one", "match.three"]
    assert got[0]["event"]["id"] == first["id"]
    assert "received" in got[0]["event"]


async def test_events_out_backfills_recent_events_once(server: Served) -> None:
    async with server.http() as http:
        old = event(
            "bf.old",
            occurred=(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2)).isoformat(),
        )
        too_old = event(
            "bf.ancient",
            occurred=(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).isoformat(),
        )
        await http.post("/events", json=[old, too_old])

        async def stored() -> bool:
            return len(await stored_event_names(http)) == 2

        await eventually(stored)
        since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).isoformat()
        async with connect(f"{server.ws_url}/events/out", subprotocols=PREFECT) as ws:
            await authenticate(ws)
            flt = {"occurred": {"since": since}, "event": {"prefix": ["bf."]}}
            await ws.send(json.dumps({"type": "filter", "filter": flt}))
            backfilled = await receive(ws)
            assert backfilled["event"]["id"] == old["id"]  # at most 15 minutes back
            await http.post("/events", json=[old])  # a repeat of a backfilled event is not resent
            sentinel = event("bf.sentinel")
            await http.post("/events", json=[sentinel])
            assert (await receive(ws))["event"]["id"] == sentinel["id"]


async def test_events_out_protocol_errors(server: Served) -> None:
    async with connect(f"{server.ws_url}/events/out", subprotocols=PREFECT) as ws:
        await authenticate(ws)
        await ws.send(json.dumps({"type": "filter", "filter": {"event": {"bogus": True}}}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002

    async with connect(f"{server.ws_url}/events/out", subprotocols=PREFECT) as ws:
        await ws.send(json.dumps({"type": "filter", "filter": {}}))  # no auth first
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_logs_out_streams_matching_lines(server: Served) -> None:
    now = dt.datetime.now(dt.timezone.utc).isoformat()

    def line(message: str, level: int) -> dict[str, Any]:
        return {"name": "test", "level": level, "message": message, "timestamp": now}

    async with (
        connect(f"{server.ws_url}/logs/out", subprotocols=PREFECT) as ws,
        server.http() as http,
    ):
        assert await authenticate(ws) == {"type": "auth_success"}
        await ws.send(json.dumps({"type": "filter", "filter": {"level": {"ge_": 30}}}))
        await asyncio.sleep(0.2)
        assert (
            await http.post("/logs/", json=[line("quiet", 20), line("loud", 40)])
        ).status_code == 201
        assert (await http.post("/logs/", json=[line("louder", 50)])).status_code == 201
        got = [await receive(ws), await receive(ws)]
    assert [m["type"] for m in got] == ["log", "log"]
    assert [m["log"]["message"] for m in got] == ["loud", "louder"]
    assert uuid.UUID(got[0]["log"]["id"])


async def test_auth_string_is_enforced_on_websockets(secured: Served) -> None:
    async with connect(f"{secured.ws_url}/events/in", subprotocols=PREFECT) as ws:
        answer = await authenticate(ws, token="wrong")
        assert answer["type"] == "auth_failure" and answer["reason"]
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    async with connect(f"{secured.ws_url}/events/out", subprotocols=PREFECT) as ws:
        assert (await authenticate(ws, token=None))["type"] == "auth_failure"

    with pytest.raises(InvalidStatus) as refused:  # no subprotocol means no handshake: refused
        async with connect(f"{secured.ws_url}/logs/out"):
            pass
    assert refused.value.response.status_code == 403

    async with connect(f"{secured.ws_url}/events/in", subprotocols=PREFECT) as ws:
        assert await authenticate(ws, token="s3cret") == {"type": "auth_success"}
        await ws.send(json.dumps(event("secured.event")))
    async with secured.http() as http:

        async def stored() -> bool:
            return await stored_event_names(http) == ["secured.event"]

        await eventually(stored)
