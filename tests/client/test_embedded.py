"""Embedded mode: no API URL means an in-process API on $FLOWPLANE_HOME/flowplane.db, and importing the client stays light."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowplane.client import get_client
from flowplane.embedded import embedded_server, shutdown_embedded_servers
from flowplane.settings import Settings


def run_python(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    env["FLOWPLANE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_importing_flowplane_and_the_client_loads_no_server(tmp_path: Path) -> None:
    result = run_python(
        """
        import sys
        import flowplane
        import flowplane.client
        from flowplane.client import get_client
        get_client()
        get_client(sync_client=True)
        heavy = [m for m in ("fastapi", "starlette", "sqlalchemy", "alembic", "typer", "uvicorn", "flowplane.server")
                 if m in sys.modules]
        print(heavy)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_flow_created_embedded_is_seen_by_another_process(flowplane_home: Path) -> None:
    with get_client(sync_client=True) as client:
        assert client.embedded
        flow_id = client.create_flow_from_name("shared")
    assert (flowplane_home / "flowplane.db").exists()

    result = run_python(
        """
        from flowplane.client import get_client
        with get_client(sync_client=True) as client:
            print(client.read_flow_by_name("shared").id)
            client.create_flow_from_name("from-the-child")
        """,
        flowplane_home,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(flow_id)
    with get_client(sync_client=True) as client:  # and back: the child's write is visible here
        assert client.read_flow_by_name("from-the-child").name == "from-the-child"


def test_one_embedded_app_per_database_serves_sync_and_async_across_event_loops(
    flowplane_home: Path,
) -> None:
    settings = Settings.load()
    assert embedded_server(settings) is embedded_server(Settings.load())

    async def create(name: str) -> None:
        async with get_client(settings=settings) as client:
            await client.create_flow_from_name(name)

    asyncio.run(create("first loop"))
    asyncio.run(create("second loop"))  # a new event loop: the app lives on its own
    with get_client(sync_client=True, settings=settings) as client:
        assert [f.name for f in client.read_flows()] == ["first loop", "second loop"]

    other = Settings.load(database_url=f"sqlite+aiosqlite:///{flowplane_home / 'other.db'}")
    assert embedded_server(other) is not embedded_server(settings)
    with get_client(sync_client=True, settings=other) as client:
        assert client.read_flows() == []


def test_shutdown_stops_the_app_and_a_later_client_starts_a_new_one(flowplane_home: Path) -> None:
    import threading

    with get_client(sync_client=True) as client:
        client.create_flow_from_name("before")
    assert any(t.name == "flowplane-embedded-server" for t in threading.enumerate())
    shutdown_embedded_servers()
    assert not any(t.name == "flowplane-embedded-server" for t in threading.enumerate())
    with get_client(sync_client=True) as client:
        assert client.read_flow_by_name("before").name == "before"


def test_a_client_kept_across_a_shutdown_gets_one_clear_error(flowplane_home: Path) -> None:
    import warnings

    from flowplane.exceptions import APIUnreachable

    client = get_client(sync_client=True)
    with client:
        client.create_flow_from_name("kept")
        shutdown_embedded_servers()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "coroutine was never awaited" on the way
            with pytest.raises(APIUnreachable, match="the embedded server was stopped"):
                client.read_flow_by_name("kept")
    with get_client(sync_client=True) as fresh:
        assert fresh.read_flow_by_name("kept").name == "kept"


def test_a_database_that_cannot_open_is_one_clear_error(tmp_path: Path) -> None:
    from flowplane.exceptions import APIUnreachable

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be")
    settings = Settings.load(database_url=f"sqlite+aiosqlite:///{blocker / 'flowplane.db'}")
    with (
        get_client(sync_client=True, settings=settings) as client,
        pytest.raises(APIUnreachable) as error,
    ):
        client.read_flows()
    assert "embedded" in str(error.value) and "failed to start" in str(error.value)


def test_embedded_server_exits_with_the_process(flowplane_home: Path) -> None:
    result = run_python(
        """
        import asyncio
        from flowplane.client import get_client
        async def main():
            async with get_client() as client:
                await client.create_flow_from_name("async-child")
        asyncio.run(main())
        print("done")
        """,
        flowplane_home,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert "Traceback" not in result.stderr


def test_flow_runs_share_a_client_and_survive_an_embedded_restart(flowplane_home: Path) -> None:
    from flowplane import flow
    from flowplane.sdk import _api

    @flow
    def twice(x: int) -> int:
        return 2 * x

    assert twice(1) == 2
    kept, owned = _api.sync_client(_api.current_settings())
    assert not owned
    assert twice(2) == 4
    assert _api.sync_client(_api.current_settings())[0] is kept

    from flowplane.sdk.writer import close_all_writers

    close_all_writers()  # as the testing harness does before it stops the app
    shutdown_embedded_servers()  # the kept client's server is gone: the next run gets a new one
    assert twice(3) == 6
    assert _api.sync_client(_api.current_settings())[0] is not kept
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter={"name": {"any_": ["twice"]}})
    assert sorted(r.state.type.value for r in runs if r.state) == ["COMPLETED"] * 3


def test_embedded_errors_and_httpx_options_behave_as_through_httpx(flowplane_home: Path) -> None:
    from uuid import uuid4

    from flowplane.exceptions import ObjectNotFound

    seen: list[str] = []
    with get_client(sync_client=True) as plain:
        assert plain._direct is not None
        with pytest.raises(ObjectNotFound) as error:
            plain.read_flow_run(uuid4())
        assert error.value.status_code == 404 and "/flow_runs/" in error.value.url
    hooks = {"event_hooks": {"request": [lambda request: seen.append(request.url.path)]}}
    with get_client(hooks, sync_client=True) as hooked:
        assert hooked._direct is None  # options for httpx: its client layer handles requests
        hooked.create_flow_from_name("hooked")
    assert seen == ["/api/flows/"]


def test_flow_run_routes_answer_the_same_served_directly_or_by_the_app(
    flowplane_home: Path,
) -> None:
    from uuid import uuid4

    import httpx

    from flowplane.exceptions import ObjectNotFound, ValidationFailed

    def exchange(client: object, direct: bool) -> list[tuple[int, object]]:
        server = embedded_server(Settings.load())
        server.running_loop()
        server._direct_ingest = direct
        http: httpx.Client = client._http  # type: ignore[attr-defined]
        flow_id = http.post("flows/", json={"name": f"direct-{direct}"}).json()["id"]
        body = {"flow_id": flow_id, "state": {"type": "RUNNING"}, "idempotency_key": "k"}
        made = http.post("flow_runs/", json=body)
        again = http.post("flow_runs/", json=body)  # the same key: the same run, 200
        run_id = made.json()["id"]
        done = http.post(f"flow_runs/{run_id}/set_state", json={"state": {"type": "COMPLETED"}})
        late = http.post(f"flow_runs/{run_id}/set_state", json={"state": {"type": "RUNNING"}})
        answers = [made, again, done, late]
        assert again.json()["id"] == run_id
        shapes: list[tuple[int, object]] = []
        for answer in answers:
            payload = answer.json()
            shapes.append((answer.status_code, sorted(payload)))
        shapes.append((0, [done.json()["status"], late.json()["status"]]))
        shapes.append((0, done.json()["state"]["state_details"]["flow_run_id"] == run_id))
        return shapes

    with get_client(sync_client=True) as client:
        by_app = exchange(client, direct=False)
        served = exchange(client, direct=True)
        assert served == by_app
        assert by_app[:3] == [(201, by_app[0][1]), (200, by_app[0][1]), (201, by_app[2][1])]
        # Error answers come from the app itself: typed errors as always.
        with pytest.raises(ObjectNotFound):
            client.set_flow_run_state(uuid4(), {"type": "COMPLETED"})
        with pytest.raises(ObjectNotFound):
            client.create_flow_run(flow_id=uuid4())
        refused = client._http.post("flow_runs/", json={"flow_id": "not-a-uuid"})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "flow_id"
        with pytest.raises(ValidationFailed):
            client.set_flow_run_state(uuid4(), {"type": "NOT-A-STATE"})
