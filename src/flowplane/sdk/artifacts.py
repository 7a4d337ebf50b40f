"""Artifacts: markdown, tables, links, progress and images a run publishes for people.

Each ``create_*`` function builds the artifact once (:func:`_build` and friends) and
sends it with a sync client; its ``acreate_*`` twin sends the same request with an
async client. Inside a flow or task run the artifact carries the run's ids; outside
one it is created on its own.
"""

from __future__ import annotations

import json
import math
from typing import Any
from uuid import UUID

from flowplane.schemas.artifacts import PROGRESS_MAX, PROGRESS_MIN, ArtifactCreate, ArtifactUpdate
from flowplane.sdk._calls import call_async, call_sync
from flowplane.sdk.context import current_frame

__all__ = [
    "acreate_image_artifact",
    "acreate_link_artifact",
    "acreate_markdown_artifact",
    "acreate_progress_artifact",
    "acreate_table_artifact",
    "aupdate_progress_artifact",
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "update_progress_artifact",
]

Table = dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]]


def run_ids() -> tuple[UUID | None, UUID | None]:
    """The current (flow run id, task run id); ``None`` for each outside such a run."""
    frame = current_frame()
    task_run_id = flow_run_id = None
    if frame.task is not None:
        record = frame.task.record
        task_run_id = record.id
        if record.flow_run is not None:
            flow_run_id = record.flow_run.id
    if flow_run_id is None and frame.flow is not None:
        flow_run_id = frame.flow.flow_run.id
    return flow_run_id, task_run_id


def _build(type_: str, data: Any, key: str | None, description: str | None) -> ArtifactCreate:
    flow_run_id, task_run_id = run_ids()
    return ArtifactCreate(
        key=key,
        type=type_,
        description=description,
        data=data,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
    )


def _sanitize(item: Any) -> Any:
    """NaN (and infinities, which JSON cannot carry either) become ``None``, as in Prefect."""
    if isinstance(item, list):
        return [_sanitize(x) for x in item]
    if isinstance(item, dict):
        return {k: _sanitize(v) for k, v in item.items()}
    if isinstance(item, float) and not math.isfinite(item):
        return None
    return item


def table_data(table: Table) -> str:
    """The table as the JSON text the API stores.

    Raises:
        TypeError: ``table`` is not a dict of lists, a list of dicts or a list of lists.
    """
    if isinstance(table, dict):
        ok = all(isinstance(column, list) for column in table.values())
    elif isinstance(table, list):
        ok = all(isinstance(row, dict) for row in table) or all(
            isinstance(row, list) for row in table
        )
    else:
        ok = False
    if not ok:
        raise TypeError(
            "A table artifact takes a dict of lists (columns), a list of dicts (rows) "
            f"or a list of lists, got {type(table).__name__}."
        )
    return json.dumps(_sanitize(table))


def progress_value(progress: float) -> float:
    """``progress`` checked to be a percentage.

    Raises:
        ValueError: it is not a number from 0 to 100.
    """
    if isinstance(progress, bool) or not isinstance(progress, (int, float)):
        raise ValueError(f"Progress must be a number from 0 to 100, got {progress!r}.")
    if not PROGRESS_MIN <= progress <= PROGRESS_MAX:
        raise ValueError(f"Progress must be from 0 to 100, got {progress!r}.")
    return float(progress)


def _link(link: str, link_text: str | None) -> str:
    return f"[{link_text or link}]({link})"


def _progress_update(progress: float, description: str | None) -> ArtifactUpdate:
    if description is None:
        return ArtifactUpdate(data=progress_value(progress))
    return ArtifactUpdate(data=progress_value(progress), description=description)


def _create(artifact: ArtifactCreate) -> UUID:
    result: UUID = call_sync("create_artifact", artifact).id
    return result


async def _acreate(artifact: ArtifactCreate) -> UUID:
    result: UUID = (await call_async("create_artifact", artifact)).id
    return result


# --- the public functions: build once, send sync or async -------------------------------


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish markdown.

    Args:
        markdown: the text, rendered as markdown.
        key: lowercase letters, numbers and dashes; artifacts with a key are versioned by it.
        description: a markdown description.

    Returns:
        The new artifact's id.

    Raises:
        pydantic.ValidationError: the key is not allowed.
    """
    return _create(_build("markdown", markdown, key, description))


async def acreate_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    """:func:`create_markdown_artifact` for async code."""
    return await _acreate(_build("markdown", markdown, key, description))


def create_table_artifact(
    table: Table, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish a table: a dict of columns, a list of row dicts, or a list of row lists.

    NaN values are published as empty cells (``null``).

    Returns:
        The new artifact's id.

    Raises:
        TypeError: ``table`` has none of the accepted shapes.
    """
    return _create(_build("table", table_data(table), key, description))


async def acreate_table_artifact(
    table: Table, key: str | None = None, description: str | None = None
) -> UUID:
    """:func:`create_table_artifact` for async code."""
    return await _acreate(_build("table", table_data(table), key, description))


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> UUID:
    """Publish a link (stored as a markdown link, as Prefect does).

    Returns:
        The new artifact's id.
    """
    return _create(_build("markdown", _link(link, link_text), key, description))


async def acreate_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> UUID:
    """:func:`create_link_artifact` for async code."""
    return await _acreate(_build("markdown", _link(link, link_text), key, description))


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish a progress bar; move it with :func:`update_progress_artifact`.

    Args:
        progress: percent done, from 0 to 100.

    Returns:
        The new artifact's id.

    Raises:
        ValueError: ``progress`` is not a number from 0 to 100.
    """
    return _create(_build("progress", progress_value(progress), key, description))


async def acreate_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    """:func:`create_progress_artifact` for async code."""
    return await _acreate(_build("progress", progress_value(progress), key, description))


def update_progress_artifact(
    artifact_id: UUID, progress: float, description: str | None = None
) -> UUID:
    """Move a progress artifact to ``progress`` percent, in place.

    Returns:
        ``artifact_id``.

    Raises:
        ValueError: ``progress`` is not a number from 0 to 100.
        ObjectNotFound: there is no such artifact.
    """
    call_sync("update_artifact", artifact_id, _progress_update(progress, description))
    return artifact_id


async def aupdate_progress_artifact(
    artifact_id: UUID, progress: float, description: str | None = None
) -> UUID:
    """:func:`update_progress_artifact` for async code."""
    await call_async("update_artifact", artifact_id, _progress_update(progress, description))
    return artifact_id


def create_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish an image shown from a URL anyone viewing can reach.

    Returns:
        The new artifact's id.
    """
    return _create(_build("image", image_url, key, description))


async def acreate_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> UUID:
    """:func:`create_image_artifact` for async code."""
    return await _acreate(_build("image", image_url, key, description))
