"""``flowplane.variables.Variable`` and ``flowplane.artifacts`` in embedded mode: values, overwrite rules, run ids, tables, progress."""

from __future__ import annotations

import json
import math
import uuid

import pytest
from pydantic import ValidationError

from flowplane import flow, task
from flowplane.artifacts import (
    Artifact,
    MarkdownArtifact,
    TableArtifact,
    acreate_link_artifact,
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from flowplane.exceptions import ObjectNotFound
from flowplane.variables import Variable

# --- variables ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["s", 3, 2.5, False, None, {"a": [1, None]}, [1, "x"]])
def test_set_get_any_json_value(value: object) -> None:
    stored = Variable.set("my_var", value, tags=["t"])
    assert stored == Variable(name="my_var", value=value, tags=["t"])
    assert Variable.get("my_var", default="fallback") == value


def test_get_missing_returns_default() -> None:
    assert Variable.get("nope") is None
    assert Variable.get("nope", default={"d": 1}) == {"d": 1}


def test_set_existing_without_overwrite_raises_and_changes_nothing() -> None:
    Variable.set("region", "eu", tags=["a"])
    with pytest.raises(ValueError, match="already exists. Use `overwrite=True`"):
        Variable.set("region", "us")
    assert Variable.get("region") == "eu"
    replaced = Variable.set("region", "us", tags=["b"], overwrite=True)
    assert replaced.value == "us" and replaced.tags == ["b"]
    assert Variable.get("region") == "us"


def test_bad_name_is_a_validation_error_and_stores_nothing(client) -> None:
    with pytest.raises(ValidationError, match="lowercase letters"):
        Variable.set("Bad Name", 1)
    assert client.count_variables() == 0


def test_unset() -> None:
    Variable.set("temp", 1)
    assert Variable.unset("temp") is True
    assert Variable.unset("temp") is False
    assert Variable.get("temp") is None


async def test_async_faces() -> None:
    stored = await Variable.aset("async_var", [1, 2], tags=["x"])
    assert stored.value == [1, 2]
    assert await Variable.aget("async_var") == [1, 2]
    with pytest.raises(ValueError):
        await Variable.aset("async_var", 3)
    await Variable.aset("async_var", 3, overwrite=True)
    assert await Variable.aget("async_var") == 3
    assert await Variable.aunset("async_var") is True
    assert await Variable.aget("async_var", default="gone") == "gone"


def test_variables_inside_a_flow() -> None:
    @flow
    def configured() -> object:
        Variable.set("inside", {"k": "v"})
        return Variable.get("inside")

    assert configured() == {"k": "v"}


# --- artifacts ------------------------------------------------------------------------


def test_artifacts_outside_a_run_have_no_run_ids(client) -> None:
    artifact_id = create_markdown_artifact("# Report", key="report", description="d")
    artifact = client.read_artifact(artifact_id)
    assert artifact.type == "markdown" and artifact.data == "# Report"
    assert artifact.key == "report" and artifact.description == "d"
    assert artifact.flow_run_id is None and artifact.task_run_id is None


def test_artifacts_in_flows_and_tasks_carry_run_ids(client) -> None:
    @task
    def publish() -> uuid.UUID:
        return create_link_artifact("https://example.com", "Example", key="link")

    @flow
    def pipeline() -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
        from flowplane.sdk.context import get_run_context

        run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
        return run_id, create_image_artifact("https://example.com/x.png"), publish()

    run_id, image_id, link_id = pipeline()
    image = client.read_artifact(image_id)
    assert image.type == "image" and image.data == "https://example.com/x.png"
    assert image.flow_run_id == run_id and image.task_run_id is None
    link = client.read_artifact(link_id)
    assert link.type == "markdown" and link.data == "[Example](https://example.com)"
    assert link.flow_run_id == run_id and link.task_run_id is not None
    listed = client.read_artifacts(artifact_filter={"flow_run_id": {"any_": [str(run_id)]}})
    assert {a.id for a in listed} == {image_id, link_id}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ([{"a": 1, "b": math.nan}, {"a": 2, "b": 3}], [{"a": 1, "b": None}, {"a": 2, "b": 3}]),
        ({"a": [1, math.nan], "b": ["x", "y"]}, {"a": [1, None], "b": ["x", "y"]}),
        ([[1, 2], [math.nan, 4]], [[1, 2], [None, 4]]),
    ],
)
def test_table_shapes_and_nan(client, table: object, expected: object) -> None:
    artifact = client.read_artifact(create_table_artifact(table, key="tbl"))  # type: ignore[arg-type]
    assert artifact.type == "table"
    assert json.loads(artifact.data) == expected


@pytest.mark.parametrize("table", ["text", 5, [1, 2], {"a": 1}, [{"a": 1}, [1]]])
def test_bad_tables_are_type_errors_and_store_nothing(client, table: object) -> None:
    with pytest.raises(TypeError, match="dict of lists"):
        create_table_artifact(table)  # type: ignore[arg-type]
    assert client.count_artifacts() == 0


def test_progress_updates_in_place_and_is_checked(client) -> None:
    artifact_id = create_progress_artifact(0, key="progress")
    assert update_progress_artifact(artifact_id, 55.5, description="halfway") == artifact_id
    artifact = client.read_artifact(artifact_id)
    assert artifact.data == 55.5 and artifact.description == "halfway"
    for bad in (-0.1, 100.1, "50"):
        with pytest.raises(ValueError, match="from 0 to 100"):
            update_progress_artifact(artifact_id, bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="from 0 to 100"):
            create_progress_artifact(bad)  # type: ignore[arg-type]
    assert client.read_artifact(artifact_id).data == 55.5
    assert client.count_artifacts() == 1
    with pytest.raises(ObjectNotFound):
        update_progress_artifact(uuid.uuid4(), 10)


def test_bad_key_refused_before_sending(client) -> None:
    with pytest.raises(ValidationError, match="lowercase letters, numbers, and dashes"):
        create_markdown_artifact("x", key="Not_Valid")
    assert client.count_artifacts() == 0


def test_latest_per_key(client) -> None:
    create_markdown_artifact("v1", key="daily")
    second = create_markdown_artifact("v2", key="daily")
    latest = client.read_latest_artifact("daily")
    assert latest is not None and latest.id == second and latest.data == "v2"
    assert client.read_latest_artifact("never") is None
    collections = client.read_latest_artifacts()
    assert [(c.key, c.latest_id) for c in collections] == [("daily", second)]


async def test_async_artifacts(client) -> None:
    @flow
    async def async_pipeline() -> list[uuid.UUID]:
        progress = await acreate_progress_artifact(10, key="async-progress")
        await aupdate_progress_artifact(progress, 90)
        return [
            await acreate_markdown_artifact("md"),
            await acreate_table_artifact([[1]]),
            await acreate_link_artifact("https://x.test"),
            progress,
        ]

    md, table, link, progress = await async_pipeline()
    assert client.read_artifact(md).data == "md"
    assert client.read_artifact(table).data == "[[1]]"
    assert client.read_artifact(link).data == "[https://x.test](https://x.test)"
    read = client.read_artifact(progress)
    assert read.data == 90 and read.flow_run_id is not None


def test_artifact_classes_create_get_and_get_or_create(client) -> None:
    first = MarkdownArtifact(markdown="# v1", key="notes", description="d").create()
    assert first.type == "markdown" and first.data == "# v1" and first.description == "d"
    second = TableArtifact(table=[[1, math.nan]], key="notes").create()
    got = Artifact.get("notes")
    assert got is not None and got.id == second.id and got.data == "[[1, null]]"
    assert Artifact.get("nothing-here") is None
    plain = Artifact(key="raw", type="result", data={"a": 1}).create()
    assert plain.data == '{"a": 1}'
    found, created = Artifact.get_or_create("raw", data={"b": 2})
    assert (found.id, created) == (plain.id, False)
    made, created = MarkdownArtifact.get_or_create("fresh", markdown="new")
    assert created and made.data == "new" and made.key == "fresh"
    assert client.count_artifacts() == 4


async def test_artifact_classes_async(client) -> None:
    made, created = await MarkdownArtifact.aget_or_create("async-notes", markdown="m")
    assert created
    again, created = await MarkdownArtifact.aget_or_create("async-notes", markdown="other")
    assert (again.id, created) == (made.id, False)
    assert (await Artifact.aget("async-notes")).data == "m"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="from 0 to 100"):
        from flowplane.artifacts import ProgressArtifact

        await ProgressArtifact(progress=300).acreate()
    assert client.count_artifacts() == 1
