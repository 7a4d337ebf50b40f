"""Flow models: a flow is a named workflow definition that runs belong to."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from flowplane.schemas.base import ActionModel, ObjectModel


class Flow(ObjectModel):
    name: str
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] | None = Field(default_factory=dict)


class FlowCreate(ActionModel):
    name: str = Field(min_length=1, max_length=255)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] | None = Field(default_factory=dict)


class FlowUpdate(ActionModel):
    tags: list[str] = Field(default_factory=list)


class FlowPaginationResponse(ActionModel):
    results: list[Flow]
    count: int
    limit: int
    pages: int
    page: int


class FlowBulkDeleteResponse(ActionModel):
    deleted: list[str] = Field(default_factory=list)
