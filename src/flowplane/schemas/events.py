"""Event models: something that happened to a resource, with related resources and a payload."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from pydantic import Field, field_validator

from flowplane.schemas.base import UTCDateTime, WireModel, now_utc

#: A resource is a flat string map with at least ``prefect.resource.id``.
Resource = dict[str, str]
#: A related resource also carries ``prefect.resource.role``.
RelatedResource = dict[str, str]


class Event(WireModel):
    """An event as a client emits it."""

    occurred: UTCDateTime = Field(default_factory=now_utc)
    event: str = Field(min_length=1, max_length=1024)
    resource: Resource
    related: list[RelatedResource] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    id: UUID = Field(default_factory=uuid4)
    follows: UUID | None = None

    @field_validator("resource")
    @classmethod
    def _has_id(cls, value: Resource) -> Resource:
        if not value.get("prefect.resource.id"):
            raise ValueError("resource needs a 'prefect.resource.id'")
        return {k: str(v) for k, v in value.items()}

    @field_validator("related")
    @classmethod
    def _related_have_ids_and_roles(cls, value: list[RelatedResource]) -> list[RelatedResource]:
        for item in value:
            if not item.get("prefect.resource.id") or not item.get("prefect.resource.role"):
                raise ValueError("related resources need 'prefect.resource.id' and 'prefect.resource.role'")
        return [{k: str(v) for k, v in item.items()} for item in value]

    @property
    def resource_id(self) -> str:
        return self.resource["prefect.resource.id"]

    def related_by_role(self, role: str) -> list[RelatedResource]:
        """The related resources with ``role``."""
        return [r for r in self.related if r.get("prefect.resource.role") == role]

    def receive(self, received: UTCDateTime | None = None) -> ReceivedEvent:
        """This event as the server received it."""
        return ReceivedEvent(**self.model_dump(), received=received or now_utc())


class ReceivedEvent(Event):
    """An event with the time the server received it."""

    received: UTCDateTime = Field(default_factory=now_utc)
