"""Variables and artifacts through a real server subprocess (CSRF on): the SDK's sync and async faces and the client operations."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from client_harness import ServerProcess

from flowplane import flow, task
from flowplane.artifacts import (
    acreate_progress_artifact,
    aupdate_progress_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from flowplane.client import get_client
from flowplane.exceptions import ObjectAlreadyExists, ObjectNotFound
from flowplane.variables import Variable


@pytest.fixture
def api_url(csrf_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FLOWPLANE_API_URL", csrf_server.api_url)
    yield csrf_server.api_url
    from flowplane.sdk._api import close_server_clients
    from flowplane.sdk.writer import close_all_writers

    close_all_writers()
    close_server_clients()


class TestAgainstAServer:
    def test_variables_sync(self, api_url: str) -> None:
        Variable.set("srv_var", {"n": 1}, tags=["a"])
        assert Variable.get("srv_var") == {"n": 1}
        with pytest.raises(ValueError, match="already exists"):
            Variable.set("srv_var", 2)
        Variable.set("srv_var", 2, overwrite=True)
        assert Variable.get("srv_var") == 2
        assert Variable.unset("srv_var") is True
        assert Variable.get("srv_var", default="d") == "d"

    async def test_variables_async(self, api_url: str) -> None:
        await Variable.aset("srv_async", "x")
        assert await Variable.aget("srv_async") == "x"
        assert await Variable.aunset("srv_async") is True
        assert await Variable.aunset("srv_async") is False

    def test_client_operations(self, api_url: str) -> None:
        with get_client(sync_client=True) as client:
            created = client.create_variable({"name": "ops", "value": [1], "tags": ["t"]})
            with pytest.raises(ObjectAlreadyExists):
                client.create_variable({"name": "ops", "value": [2]})
            assert client.read_variable(created.id).value == [1]
            client.update_variable({"name": "ops", "value": None})
            assert client.read_variable_by_name("ops").value is None  # type: ignore[union-attr]
            assert [
                v.name for v in client.read_variables(variable_filter={"tags": {"all_": ["t"]}})
            ] == ["ops"]
            assert client.count_variables() >= 1
            client.delete_variable_by_name("ops")
            assert client.read_variable_by_name("ops") is None
            with pytest.raises(ObjectNotFound):
                client.delete_variable_by_name("ops")

    def test_artifacts_from_a_flow(self, api_url: str) -> None:
        @task
        def table() -> object:
            return create_table_artifact({"a": [1, 2]}, key="srv-table")

        @flow
        def publish() -> tuple[object, object]:
            return create_markdown_artifact("hi", key="srv-md"), table()

        md, tbl = publish()
        with get_client(sync_client=True) as client:
            assert client.read_artifact(md).data == "hi"  # type: ignore[arg-type]
            read = client.read_artifact(tbl)  # type: ignore[arg-type]
            assert json.loads(read.data) == {"a": [1, 2]} and read.task_run_id is not None
            latest = client.read_latest_artifacts(artifact_filter={"key": {"any_": ["srv-md"]}})
            assert [c.latest_id for c in latest] == [md]
            client.delete_artifact(md)  # type: ignore[arg-type]
            assert client.read_latest_artifact("srv-md") is None

    async def test_progress_async(self, api_url: str) -> None:
        artifact_id = await acreate_progress_artifact(5, key="srv-progress")
        await aupdate_progress_artifact(artifact_id, 100)
        async with get_client() as client:
            assert (await client.read_artifact(artifact_id)).data == 100
