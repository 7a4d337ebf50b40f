"""Artifact models: data a run publishes for people (markdown, tables, links, progress, images), the latest artifact per key, filters and sorts."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator

from flowplane.schemas.base import ActionModel, ObjectModel, UTCDateTime
from flowplane.schemas.filters import CompositeFilter, LeafFilter

#: Metadata values longer than this are cut (with "..."), as Prefect does.
MAX_METADATA_LENGTH = 500

_KEY = re.compile(r"^[a-z0-9-]+$")


def check_artifact_key(key: str | None) -> str | None:
    """Refuse keys Prefect refuses: only lowercase letters, numbers and dashes."""
    if key is not None and not _KEY.match(key):
        raise ValueError("Artifact key must only contain lowercase letters, numbers, and dashes.")
    return key


def cut_metadata(metadata: dict[str, str] | None) -> dict[str, str] | None:
    if metadata is None:
        return None
    return {
        k: v if len(v) <= MAX_METADATA_LENGTH else v[:MAX_METADATA_LENGTH] + "..."
        for k, v in metadata.items()
    }


ArtifactKey = Annotated[str, AfterValidator(check_artifact_key)]
Metadata = Annotated[dict[str, str], AfterValidator(cut_metadata)]

#: What a progress artifact's data must be within (percent).
PROGRESS_MIN, PROGRESS_MAX = 0.0, 100.0


def progress_problem(type_: str | None, data: Any) -> str | None:
    """Why ``data`` cannot be a progress artifact's data (None if it can, or it is no progress artifact)."""
    if type_ != "progress":
        return None
    if isinstance(data, bool) or not isinstance(data, (int, float)):
        return f"A progress artifact's data must be a number from 0 to 100, got {data!r}."
    if not PROGRESS_MIN <= data <= PROGRESS_MAX:
        return f"A progress artifact's data must be from 0 to 100, got {data!r}."
    return None


class Artifact(ObjectModel):
    key: str | None = None
    type: str | None = None
    description: str | None = None
    data: Any = None
    metadata_: dict[str, str] | None = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None


class ArtifactCollection(ObjectModel):
    """The newest artifact of a key: its fields, and its id as ``latest_id``."""

    key: str
    latest_id: UUID
    type: str | None = None
    description: str | None = None
    data: Any = None
    metadata_: dict[str, str] | None = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
    created: UTCDateTime | None = None
    updated: UTCDateTime | None = None


class ArtifactCreate(ActionModel):
    key: ArtifactKey | None = None
    type: str | None = None
    description: str | None = None
    data: Any = None
    metadata_: Metadata | None = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None


class ArtifactUpdate(ActionModel):
    """Fields to change; absent ones are left as they are."""

    data: Any = None
    description: str | None = None
    metadata_: Metadata | None = None


# --- filters ------------------------------------------------------------------


class ArtifactFilterId(LeafFilter):
    column = "id"
    any_: list[UUID] | None = None


class ArtifactFilterKey(LeafFilter):
    column = "key"
    any_: list[str] | None = None
    like_: str | None = None
    #: True: only artifacts with a key; False: only those without.
    exists_: bool | None = None


class ArtifactFilterFlowRunId(LeafFilter):
    column = "flow_run_id"
    any_: list[UUID] | None = None


class ArtifactFilterTaskRunId(LeafFilter):
    column = "task_run_id"
    any_: list[UUID] | None = None


class ArtifactFilterType(LeafFilter):
    column = "type"
    any_: list[str] | None = None
    not_any_: list[str] | None = None


class ArtifactFilter(CompositeFilter):
    id: ArtifactFilterId | None = None
    key: ArtifactFilterKey | None = None
    flow_run_id: ArtifactFilterFlowRunId | None = None
    task_run_id: ArtifactFilterTaskRunId | None = None
    type: ArtifactFilterType | None = None


class ArtifactCollectionFilterLatestId(LeafFilter):
    column = "latest_id"
    any_: list[UUID] | None = None


class ArtifactCollectionFilter(CompositeFilter):
    latest_id: ArtifactCollectionFilterLatestId | None = None
    key: ArtifactFilterKey | None = None
    flow_run_id: ArtifactFilterFlowRunId | None = None
    task_run_id: ArtifactFilterTaskRunId | None = None
    type: ArtifactFilterType | None = None


class ArtifactSort(str, enum.Enum):
    CREATED_DESC = "CREATED_DESC"
    UPDATED_DESC = "UPDATED_DESC"
    ID_DESC = "ID_DESC"
    KEY_DESC = "KEY_DESC"
    KEY_ASC = "KEY_ASC"


#: The latest-per-key listing sorts the same ways.
ArtifactCollectionSort = ArtifactSort
