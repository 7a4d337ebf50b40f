"""The client against the real app: in-process over ASGI, embedded (sync and async), and a server subprocess."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from client_harness import Face, ServerProcess, open_face

from flowplane.exceptions import (
    APIUnreachable,
    HTTPStatusError,
    ObjectAlreadyExists,
    ObjectNotFound,
    ValidationFailed,
)
from flowplane.schemas.filters import FlowFilter, FlowFilterName
from flowplane.schemas.flow_runs import FlowRun
from flowplane.schemas.flows import Flow
from flowplane.schemas.states import OrchestrationResult

needs_runs = pytest.mark.skipif(
    importlib.util.find_spec("flowplane.server.api.flow_runs") is None
    or importlib.util.find_spec("flowplane.server.api.task_runs") is None,
    reason="the flow-run and task-run endpoints are not in the server yet",
)


async def _truncate(url: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from flowplane.server.db.tables import metadata

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        await conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
    await engine.dispose()


@pytest.fixture(
    params=[
        "asgi-sqlite",
        pytest.param("asgi-postgres", marks=pytest.mark.postgres),
        "embedded-sync",
        "embedded-async",
    ]
)
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """Which client face and app to use, with the database URL for the ASGI ones."""
    if request.param == "asgi-sqlite":
        return request.param, request.getfixturevalue("sqlite_url")
    if request.param == "asgi-postgres":
        url = request.getfixturevalue("postgres_database")  # skips when no PostgreSQL runs
        asyncio.run(_truncate(url))
        return request.param, url
    return request.param, None


@pytest.fixture
async def api(backend: tuple[str, str | None]) -> AsyncIterator[Face]:
    """The client, async or sync, on the real app: through ASGI directly (SQLite or
    PostgreSQL), or embedded in this process on the home folder's database."""
    kind, url = backend
    if url is not None:
        from asgi_lifespan import LifespanManager

        from flowplane.client import AsyncClient
        from flowplane.server.app import create_app
        from flowplane.settings import Settings

        app = create_app(Settings.load(database_url=url), run_migrations=False)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with AsyncClient(
                "http://test/api", httpx_settings={"transport": transport}
            ) as client:
                yield Face(client, True)
        return
    face, close = await open_face(kind.removeprefix("embedded-"))
    try:
        yield face
    finally:
        await close()


class _Flowish:
    """Stands in for a flow definition: what the client reads from one."""

    def __init__(self, name: str, version: str | None = None, retries: int | None = None) -> None:
        self.name = name
        self.version = version
        self.retries = retries
        self.retry_delay_seconds = 2.0 if retries else None


# --- flows --------------------------------------------------------------------------------


async def test_flows_create_read_list_count_delete(api: Face) -> None:
    first = await api.create_flow_from_name("daily etl")
    assert isinstance(first, uuid.UUID)
    assert await api.create_flow_from_name("daily etl") == first  # an upsert by name
    other = await api.create_flow(_Flowish("reports"))

    flow = await api.read_flow(first)
    assert isinstance(flow, Flow) and flow.name == "daily etl"
    assert (await api.read_flow(str(first))).id == first
    assert (await api.read_flow_by_name("daily etl")).id == first

    names = [f.name for f in await api.read_flows()]
    assert names == ["daily etl", "reports"]
    only = await api.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=["reports"])))
    assert [f.id for f in only] == [other]
    as_dict = await api.read_flows(flow_filter={"name": {"like_": "ETL"}})
    assert [f.id for f in as_dict] == [first]
    assert [f.name for f in await api.read_flows(sort="NAME_DESC", limit=1)] == ["reports"]
    assert [f.name for f in await api.read_flows(offset=1)] == ["reports"]
    assert await api.count_flows() == 2

    await api.delete_flow(other)
    with pytest.raises(ObjectNotFound):
        await api.read_flow(other)
    assert await api.count_flows() == 2 - 1


async def test_errors_are_typed_and_carry_the_detail(api: Face) -> None:
    missing = uuid.uuid4()
    with pytest.raises(ObjectNotFound) as not_found:
        await api.read_flow(missing)
    assert not_found.value.status_code == 404
    assert str(missing) in str(not_found.value.detail)
    assert "not found" in str(not_found.value)

    with pytest.raises(ObjectNotFound):
        await api.read_flow_by_name("no such flow")
    with pytest.raises(ObjectNotFound):
        await api.delete_flow(missing)

    with pytest.raises(ValidationFailed) as invalid:
        await api.create_flow_from_name("")
    assert invalid.value.status_code == 422
    assert isinstance(invalid.value.detail, list)  # FastAPI's error list, kept as sent
    assert "name" in str(invalid.value)

    with pytest.raises(ValueError):
        await api.read_flow("not-a-uuid")  # caught before any request
    assert await api.count_flows() == 0  # nothing was written by the failures


async def test_server_operations(api: Face) -> None:
    assert await api.api_healthcheck() is None
    assert await api.hello() == "👋"
    assert (await api.api_version()).startswith("3.")


async def test_logs_are_written_and_read_back_in_order(api: Face) -> None:
    run_id = uuid.uuid4()
    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    await api.create_logs(
        [
            {
                "name": "flowplane.flow_runs",
                "level": 20,
                "message": f"line {i}",
                "timestamp": base + dt.timedelta(seconds=i),
                "flow_run_id": str(run_id),
            }
            for i in (2, 0, 1)
        ]
    )
    await api.create_logs(
        [{"name": "other", "level": 40, "message": "elsewhere", "timestamp": base}]
    )
    lines = await api.read_logs(log_filter={"flow_run_id": {"any_": [str(run_id)]}})
    assert [line.message for line in lines] == ["line 0", "line 1", "line 2"]
    newest = await api.read_logs(
        log_filter={"flow_run_id": {"any_": [str(run_id)]}}, sort="TIMESTAMP_DESC", limit=1
    )
    assert [line.message for line in newest] == ["line 2"]
    errors = await api.read_logs(log_filter={"level": {"ge_": 40}})
    assert [line.message for line in errors] == ["elsewhere"]
    with pytest.raises(ValidationFailed):
        await api.create_logs([{"name": "x", "level": 20}])


async def test_events_are_emitted_and_read_back(api: Face) -> None:
    from flowplane.schemas.events import Event

    marker = uuid.uuid4().hex
    await api.create_events(
        [
            Event(event="test.client.emitted", resource={"prefect.resource.id": f"test.{marker}"}),
            {"event": "test.client.dict", "resource": {"prefect.resource.id": f"test.{marker}"}},
        ]
    )
    flt = {"resource": {"id": [f"test.{marker}"]}, "occurred": {"since": "2000-01-01T00:00:00Z"}}
    page = None
    for _ in range(100):  # events are stored by a background service
        page = await api.read_events(filter=flt)
        if page.total == 2:
            break
        await asyncio.sleep(0.05)
    assert page is not None and page.total == 2
    assert sorted(e.event for e in page.events) == ["test.client.dict", "test.client.emitted"]

    first = await api.read_events(filter=flt, limit=1)
    assert len(first.events) == 1 and first.next_page
    second = await api.read_events_page(first.next_page)
    assert len(second.events) == 1 and second.events[0].id != first.events[0].id

    with pytest.raises(ValidationFailed):
        await api.create_events([{"event": "no.resource.id", "resource": {}}])


# --- flow runs and task runs ---------------------------------------------------------------


@needs_runs
async def test_flow_runs_lifecycle(api: Face) -> None:
    flow_id = await api.create_flow_from_name("etl")
    run = await api.create_flow_run(flow_id, parameters={"x": 1}, tags=["a"], name="first")
    assert isinstance(run, FlowRun)
    assert (run.flow_id, run.name, run.parameters, run.tags) == (flow_id, "first", {"x": 1}, ["a"])
    assert run.state is not None and run.state.type.value == "PENDING"

    by_definition = await api.create_flow_run(_Flowish("other flow", version="1.2", retries=3))
    assert by_definition.flow_version == "1.2"
    assert by_definition.empirical_policy.retries == 3
    assert (await api.read_flow(by_definition.flow_id)).name == "other flow"

    again = await api.create_flow_run(flow_id=flow_id, idempotency_key="key-1")
    assert (await api.create_flow_run(flow_id=flow_id, idempotency_key="key-1")).id == again.id

    assert (await api.read_flow_run(run.id)).name == "first"
    runs = await api.read_flow_runs(flow_filter={"name": {"any_": ["etl"]}})
    assert {r.id for r in runs} == {run.id, again.id}
    assert await api.count_flow_runs() == 3
    assert await api.count_flow_runs(flow_run_filter={"tags": {"all_": ["a"]}}) == 1

    await api.update_flow_run(run.id, name="renamed", tags=["b"])
    updated = await api.read_flow_run(run.id)
    assert (updated.name, updated.tags) == ("renamed", ["b"])
    await api.set_flow_run_name(run.id, "again")
    assert (await api.read_flow_run(run.id)).name == "again"

    result = await api.set_flow_run_state(run.id, {"type": "RUNNING"})
    assert isinstance(result, OrchestrationResult)
    assert result.status.value == "ACCEPT"
    assert result.state is not None and result.state.type.value == "RUNNING"
    completed = await api.set_flow_run_state(run.id, {"type": "COMPLETED", "message": "done"})
    assert completed.status.value == "ACCEPT"
    states = await api.read_flow_run_states(run.id)
    assert [s.type.value for s in states] == ["PENDING", "RUNNING", "COMPLETED"]
    assert (
        await api.count_flow_runs(flow_run_filter={"state": {"type": {"any_": ["COMPLETED"]}}}) == 1
    )

    await api.delete_flow_run(run.id)
    with pytest.raises(ObjectNotFound):
        await api.read_flow_run(run.id)
    with pytest.raises(ObjectNotFound):
        await api.delete_flow_run(run.id)
    with pytest.raises(ObjectNotFound):
        await api.set_flow_run_state(run.id, {"type": "RUNNING"})
    with pytest.raises(ObjectNotFound):
        await api.create_flow_run(flow_id=uuid.uuid4())


@needs_runs
async def test_flow_run_input_and_resume(api: Face) -> None:
    flow_id = await api.create_flow_from_name("etl")
    run = await api.create_flow_run(flow_id)
    await api.create_flow_run_input(run.id, "answer", '{"value": 42}', sender="me")
    await api.create_flow_run_input(run.id, "answer-2", '"b"')
    assert await api.read_flow_run_input(run.id, "answer") == '{"value": 42}'
    with pytest.raises(ObjectAlreadyExists) as exists:
        await api.create_flow_run_input(run.id, "answer", '"again"')
    assert exists.value.status_code == 409
    found = await api.filter_flow_run_input(run.id, "answer", limit=10, exclude_keys={"answer-2"})
    assert [(i.key, i.sender) for i in found] == [("answer", "me")]
    await api.delete_flow_run_input(run.id, "answer")
    with pytest.raises(ObjectNotFound):
        await api.read_flow_run_input(run.id, "answer")

    result = await api.resume_flow_run(run.id)  # not paused: the orchestrator refuses
    assert isinstance(result, OrchestrationResult)
    assert result.status.value in ("ABORT", "REJECT")


@needs_runs
async def test_task_runs_lifecycle(api: Face) -> None:
    flow_id = await api.create_flow_from_name("etl")
    flow_run = await api.create_flow_run(flow_id)
    await api.set_flow_run_state(flow_run.id, {"type": "RUNNING"})
    chosen = uuid.uuid4()
    task_run = await api.create_task_run(
        flow_run_id=flow_run.id,
        task_key="etl.extract",
        dynamic_key="0",
        id=chosen,
        name="extract-0",
        extra_tags=["t"],
    )
    assert (task_run.id, task_run.task_key, task_run.dynamic_key, task_run.tags) == (
        chosen,
        "etl.extract",
        "0",
        ["t"],
    )
    other = await api.create_task_run(flow_run_id=flow_run.id, task_key="etl.load", dynamic_key="0")

    assert (await api.read_task_run(chosen)).name == "extract-0"
    listed = await api.read_task_runs(task_run_filter={"flow_run_id": {"any_": [str(flow_run.id)]}})
    assert {t.id for t in listed} == {chosen, other.id}
    assert await api.count_task_runs(task_run_filter={"name": {"any_": ["extract-0"]}}) == 1

    running = await api.set_task_run_state(chosen, {"type": "RUNNING"})
    assert running.status.value == "ACCEPT"
    assert (await api.set_task_run_state(chosen, {"type": "COMPLETED"})).status.value == "ACCEPT"
    assert [s.type.value for s in await api.read_task_run_states(chosen)] == [
        "PENDING",
        "RUNNING",
        "COMPLETED",
    ]

    await api.delete_task_run(other.id)
    with pytest.raises(ObjectNotFound):
        await api.read_task_run(other.id)
    with pytest.raises(ObjectNotFound):
        await api.set_task_run_state(uuid.uuid4(), {"type": "RUNNING"})


# --- a real server process -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
class TestAgainstServerProcess:
    """The same client over real HTTP to ``flowplane server start``."""

    async def test_flows_over_http(self, server: ServerProcess, kind: str) -> None:
        face, close = await open_face(kind, api_url=server.api_url)
        try:
            name = f"served-{kind}-{uuid.uuid4().hex[:6]}"
            flow_id = await face.create_flow_from_name(name)
            assert (await face.read_flow_by_name(name)).id == flow_id
            assert await face.api_healthcheck() is None
            with pytest.raises(ObjectNotFound):
                await face.read_flow(uuid.uuid4())
            with pytest.raises(ValidationFailed):
                await face.create_flow_from_name("")
        finally:
            await close()

    @needs_runs
    async def test_runs_over_http(self, server: ServerProcess, kind: str) -> None:
        face, close = await open_face(kind, api_url=server.api_url)
        try:
            flow_id = await face.create_flow_from_name(f"runs-{kind}")
            run = await face.create_flow_run(flow_id, name=f"run-{kind}")
            assert (
                await face.set_flow_run_state(run.id, {"type": "RUNNING"})
            ).status.value == "ACCEPT"
            assert (await face.read_flow_run(run.id)).state.type.value == "RUNNING"
        finally:
            await close()

    async def test_no_server_is_api_unreachable(self, kind: str) -> None:
        from client_harness import free_port

        url = f"http://127.0.0.1:{free_port()}/api"
        face, close = await open_face(kind, api_url=url)
        try:
            with pytest.raises(APIUnreachable) as unreachable:
                await face.read_flows()
            assert url in str(unreachable.value)
            assert str(unreachable.value).count("\n") == 0
            health = await face.api_healthcheck()
            assert isinstance(health, APIUnreachable)
        finally:
            await close()


@pytest.mark.parametrize("kind", ["sync", "async"])
class TestCsrf:
    """A server with CSRF protection: the client fetches a token before writes."""

    async def test_writes_carry_a_token(self, csrf_server: ServerProcess, kind: str) -> None:
        async with httpx.AsyncClient() as raw:
            bare = await raw.post(f"{csrf_server.api_url}/flows/", json={"name": "no-token"})
        assert bare.status_code == 403  # the server really does require it

        face, close = await open_face(kind, api_url=csrf_server.api_url)
        try:
            name = f"csrf-{kind}"
            flow_id = await face.create_flow_from_name(name)
            assert (await face.read_flow(flow_id)).name == name
            await face.delete_flow(flow_id)
            exchange = face.client._exchange
            assert exchange.csrf_enabled and exchange.csrf_token
        finally:
            await close()

    async def test_a_server_without_csrf_turns_it_off(
        self, server: ServerProcess, kind: str
    ) -> None:
        face, close = await open_face(kind, api_url=server.api_url)
        try:
            await face.create_flow_from_name(f"plain-{kind}")
            assert face.client._exchange.csrf_enabled is False
        finally:
            await close()


def test_embedded_csrf_when_the_settings_ask_for_it(flowplane_home: Any) -> None:
    from flowplane.client import get_client
    from flowplane.settings import Settings

    settings = Settings.load(server_csrf_protection_enabled=True)
    with get_client(sync_client=True, settings=settings) as client:
        flow_id = client.create_flow_from_name("protected")
        assert client.read_flow(flow_id).name == "protected"
        assert client._exchange.csrf_token


def test_http_status_error_for_other_statuses() -> None:
    from flowplane.client import get_client
    from flowplane.settings import Settings

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"detail": "boom"})

    settings = Settings.load(api_url="http://test/api")
    client = get_client(
        sync_client=True,
        settings=settings,
        httpx_settings={"transport": httpx.MockTransport(handler)},
    )
    with client, pytest.raises(HTTPStatusError) as error:
        client.read_flows()
    assert type(error.value) is HTTPStatusError
    assert error.value.status_code == 500 and error.value.detail == "boom"
