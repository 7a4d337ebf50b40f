"""Artifacts: markdown, tables, links, progress and images a run publishes for people.

Each kind is a class (``MarkdownArtifact``, ``TableArtifact``...) that formats its
content once; ``create`` sends the request with a sync client and ``acreate`` sends
the same request with an async one, and the ``create_*``/``acreate_*`` functions are
one-line shells over them. Inside a flow or task run an artifact carries the run's
ids; outside one it is created on its own.
"""

from __future__ import annotations

import json
import math
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from flowplane.schemas.artifacts import PROGRESS_MAX, PROGRESS_MIN, ArtifactCreate, ArtifactUpdate
from flowplane.schemas.artifacts import Artifact as ArtifactResponse
from flowplane.sdk._calls import call_async, call_sync
from flowplane.sdk.context import current_frame

__all__ = [
    "Artifact",
    "ImageArtifact",
    "LinkArtifact",
    "MarkdownArtifact",
    "ProgressArtifact",
    "TableArtifact",
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


def _sanitize(item: Any) -> Any:
    """NaN (and infinities, which JSON cannot carry either) become ``None``, as in Prefect."""
    if isinstance(item, list):
        return [_sanitize(x) for x in item]
    if isinstance(item, dict):
        return {k: _sanitize(v) for k, v in item.items()}
    if isinstance(item, float) and not math.isfinite(item):
        return None
    return item


def table_data(table: Any) -> str:
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


def progress_value(progress: Any) -> float:
    """``progress`` checked to be a percentage.

    Raises:
        ValueError: it is not a number from 0 to 100.
    """
    if isinstance(progress, bool) or not isinstance(progress, (int, float)):
        raise ValueError(f"Progress must be a number from 0 to 100, got {progress!r}.")
    if not PROGRESS_MIN <= progress <= PROGRESS_MAX:
        raise ValueError(f"Progress must be from 0 to 100, got {progress!r}.")
    return float(progress)


def _progress_update(progress: float, description: str | None) -> ArtifactUpdate:
    if description is None:
        return ArtifactUpdate(data=progress_value(progress))
    return ArtifactUpdate(data=progress_value(progress), description=description)


# --- the artifact classes (Prefect's ``Artifact`` family) --------------------------------


class Artifact(BaseModel):
    """An artifact to publish: ``type``, ``key``, ``description`` and the data :meth:`format` gives.

    Subclasses keep their content in a field of their own (``markdown``, ``table``...)
    and format it; ``create``/``acreate`` send it, ``get``/``aget`` read the newest by key.

    Attributes:
        type: what the data is (``markdown``, ``table``, ``progress``, ``image``...).
        key: lowercase letters, numbers and dashes; artifacts with a key are versioned by it.
        description: a markdown description.
        data: the payload (this base class publishes it as JSON text, as Prefect does).
        flow_run_id: the flow run it belongs to (default: the current one).
        task_run_id: the task run it belongs to (default: the current one).
    """

    type: str | None = None
    key: str | None = None
    description: str | None = None
    data: Any = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None

    def format(self) -> Any:
        """The data as the API stores it."""
        return json.dumps(self.data)

    async def aformat(self) -> Any:
        """:meth:`format` (it does no I/O; here for Prefect's async API)."""
        return self.format()

    def _request(self) -> ArtifactCreate:
        flow_run_id, task_run_id = run_ids()
        return ArtifactCreate(
            key=self.key,
            type=self.type,
            description=self.description,
            data=self.format(),
            flow_run_id=self.flow_run_id or flow_run_id,
            task_run_id=self.task_run_id or task_run_id,
        )

    def create(self) -> ArtifactResponse:
        """Publish the artifact, with the current run's ids unless given.

        Returns:
            The artifact as stored.

        Raises:
            pydantic.ValidationError: the key is not allowed.
            ValueError, TypeError: the content cannot be formatted (see the subclass).
        """
        created: ArtifactResponse = call_sync("create_artifact", self._request())
        return created

    async def acreate(self) -> ArtifactResponse:
        """:meth:`create` for async code."""
        created: ArtifactResponse = await call_async("create_artifact", self._request())
        return created

    @classmethod
    def get(cls, key: str | None = None) -> ArtifactResponse | None:
        """The newest artifact with ``key`` (without a key: the one updated last), or ``None``."""
        if key is not None:
            latest: ArtifactResponse | None = call_sync("read_latest_artifact", key)
            return latest
        found = call_sync("read_artifacts", sort="UPDATED_DESC", limit=1)
        return found[0] if found else None

    @classmethod
    async def aget(cls, key: str | None = None) -> ArtifactResponse | None:
        """:meth:`get` for async code."""
        if key is not None:
            latest: ArtifactResponse | None = await call_async("read_latest_artifact", key)
            return latest
        found = await call_async("read_artifacts", sort="UPDATED_DESC", limit=1)
        return found[0] if found else None

    @classmethod
    def get_or_create(
        cls,
        key: str | None = None,
        description: str | None = None,
        data: Any = None,
        **fields: Any,
    ) -> tuple[ArtifactResponse, bool]:
        """The newest artifact with ``key``, or a new one made from the arguments.

        Returns:
            The artifact, and whether it was created.
        """
        found = cls.get(key)
        if found is not None:
            return found, False
        return cls(key=key, description=description, data=data, **fields).create(), True

    @classmethod
    async def aget_or_create(
        cls,
        key: str | None = None,
        description: str | None = None,
        data: Any = None,
        **fields: Any,
    ) -> tuple[ArtifactResponse, bool]:
        """:meth:`get_or_create` for async code."""
        found = await cls.aget(key)
        if found is not None:
            return found, False
        return await cls(key=key, description=description, data=data, **fields).acreate(), True


class MarkdownArtifact(Artifact):
    """Markdown text."""

    type: str | None = "markdown"
    markdown: str

    def format(self) -> str:
        return self.markdown


class LinkArtifact(Artifact):
    """A link, published as a markdown link."""

    type: str | None = "markdown"
    link: str
    link_text: str | None = None

    def format(self) -> str:
        return f"[{self.link_text or self.link}]({self.link})"


class TableArtifact(Artifact):
    """A table: a dict of columns, a list of row dicts or a list of row lists (NaN -> null)."""

    type: str | None = "table"
    table: Any

    def format(self) -> str:
        return table_data(self.table)


class ProgressArtifact(Artifact):
    """A progress bar in percent (0 to 100); move it with :func:`update_progress_artifact`."""

    type: str | None = "progress"
    progress: Any

    def format(self) -> float:
        return progress_value(self.progress)


class ImageArtifact(Artifact):
    """An image shown from a URL anyone viewing can reach."""

    type: str | None = "image"
    image_url: str

    def format(self) -> str:
        return self.image_url


def _id(artifact: ArtifactResponse) -> UUID:
    return artifact.id


# --- the functions: one-line shells over the classes ---------------------------------


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
    return _id(MarkdownArtifact(markdown=markdown, key=key, description=description).create())


async def acreate_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    """:func:`create_markdown_artifact` for async code."""
    return _id(
        await MarkdownArtifact(markdown=markdown, key=key, description=description).acreate()
    )


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
    return _id(TableArtifact(table=table, key=key, description=description).create())


async def acreate_table_artifact(
    table: Table, key: str | None = None, description: str | None = None
) -> UUID:
    """:func:`create_table_artifact` for async code."""
    return _id(await TableArtifact(table=table, key=key, description=description).acreate())


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
    return _id(
        LinkArtifact(link=link, link_text=link_text, key=key, description=description).create()
    )


async def acreate_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> UUID:
    """:func:`create_link_artifact` for async code."""
    return _id(
        await LinkArtifact(
            link=link, link_text=link_text, key=key, description=description
        ).acreate()
    )


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
    return _id(ProgressArtifact(progress=progress, key=key, description=description).create())


async def acreate_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    """:func:`create_progress_artifact` for async code."""
    return _id(
        await ProgressArtifact(progress=progress, key=key, description=description).acreate()
    )


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
    return _id(ImageArtifact(image_url=image_url, key=key, description=description).create())


async def acreate_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> UUID:
    """:func:`create_image_artifact` for async code."""
    return _id(await ImageArtifact(image_url=image_url, key=key, description=description).acreate())
