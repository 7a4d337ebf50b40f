"""Log line models."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from flowplane.schemas.base import ActionModel, ObjectModel, UTCDateTime


class Log(ObjectModel):
    name: str
    level: int
    message: str
    timestamp: UTCDateTime
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None


class LogCreate(ActionModel):
    name: str = Field(max_length=255)
    level: int
    message: str
    timestamp: UTCDateTime
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
