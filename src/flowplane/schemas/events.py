"""Event models: something that happened to a resource, with related resources and a payload.

Besides the event itself this module holds what the events API speaks: the
``EventFilter`` tree (``POST /events/filter``, ``/events/out``), the page and count
answers, and the countables and time units of ``/events/count-by``.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Any, Union
from uuid import UUID, uuid4

from pydantic import Field, field_validator

from flowplane.schemas.base import ActionModel, UTCDateTime, WireModel, now_utc
from flowplane.schemas.sorting import EventOrder

__all__ = [
    "Resource",
    "RelatedResource",
    "ResourceSpecification",
    "Event",
    "ReceivedEvent",
    "EventOrder",
    "EventOccurredFilter",
    "EventNameFilter",
    "EventResourceFilter",
    "EventRelatedFilter",
    "EventAnyResourceFilter",
    "EventIDFilter",
    "EventTextFilter",
    "EventFilter",
    "EventPage",
    "EventCount",
    "Countable",
    "TimeUnit",
    "DEFAULT_LOOKBACK",
]

#: A resource is a flat string map with at least ``prefect.resource.id``.
Resource = dict[str, str]
#: A related resource also carries ``prefect.resource.role``.
RelatedResource = dict[str, str]
#: Label name -> glob pattern(s); a pattern starting with ``!`` must not match.
ResourceSpecification = dict[str, Union[str, list[str]]]

#: How far back an event query looks when it does not say.
DEFAULT_LOOKBACK = timedelta(days=1)


def _as_labels(value: dict[str, str]) -> dict[str, str]:
    """``value`` with every label value a plain ``str`` (the same dict when they already are)."""
    for item in value.values():
        if type(item) is not str:
            return {k: str(v) for k, v in value.items()}
    return value


_RECEIVED = frozenset({"received"})


class Event(WireModel):
    """An event as a client emits it."""

    occurred: UTCDateTime = Field(default_factory=now_utc)
    event: str = Field(min_length=1, max_length=1024)
    resource: Resource
    related: list[RelatedResource] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    id: UUID = Field(default_factory=uuid4)
    follows: UUID | None = None

    # One pass over the labels; the dict is rebuilt only when a value is not a plain str.
    @field_validator("resource")
    @classmethod
    def _has_id(cls, value: Resource) -> Resource:
        if not value.get("prefect.resource.id"):
            raise ValueError("resource needs a 'prefect.resource.id'")
        return _as_labels(value)

    @field_validator("related")
    @classmethod
    def _related_have_ids_and_roles(cls, value: list[RelatedResource]) -> list[RelatedResource]:
        for item in value:
            if not item.get("prefect.resource.id") or not item.get("prefect.resource.role"):
                raise ValueError(
                    "related resources need 'prefect.resource.id' and 'prefect.resource.role'"
                )
        return [_as_labels(item) for item in value]

    @property
    def resource_id(self) -> str:
        return self.resource["prefect.resource.id"]

    def related_by_role(self, role: str) -> list[RelatedResource]:
        """The related resources with ``role``."""
        return [r for r in self.related if r.get("prefect.resource.role") == role]

    def receive(self, received: UTCDateTime | None = None) -> ReceivedEvent:
        """This event as the server received it (at ``received``, by default now).

        The fields are already valid, so nothing is dumped or validated again: the
        received event shares this event's values (``resource``, ``related`` and
        ``payload`` are the same objects), the way ``model_construct`` builds a model.
        """
        data = dict(self.__dict__)
        data["received"] = received or now_utc()
        event = ReceivedEvent.__new__(ReceivedEvent)
        object.__setattr__(event, "__dict__", data)
        object.__setattr__(event, "__pydantic_fields_set__", self.model_fields_set | _RECEIVED)
        object.__setattr__(event, "__pydantic_extra__", None)
        object.__setattr__(event, "__pydantic_private__", None)
        return event


class ReceivedEvent(Event):
    """An event with the time the server received it."""

    received: UTCDateTime = Field(default_factory=now_utc)


# --- filters -------------------------------------------------------------------------
# Each list criterion is "any of"; criteria within one filter, and the filters of an
# EventFilter, must all hold. An empty or missing list places no constraint.


def _default_since() -> Any:
    return now_utc() - DEFAULT_LOOKBACK


class EventOccurredFilter(ActionModel):
    """Events that occurred between ``since`` and ``until`` (both inclusive)."""

    since: UTCDateTime = Field(default_factory=_default_since)
    until: UTCDateTime = Field(default_factory=now_utc)


class EventNameFilter(ActionModel):
    """Events by name: exact names, name prefixes, and exclusions of either."""

    prefix: list[str] | None = None
    exclude_prefix: list[str] | None = None
    name: list[str] | None = None
    exclude_name: list[str] | None = None


class EventResourceFilter(ActionModel):
    """Events by their own resource. ``distinct`` keeps one event per resource id."""

    id: list[str] | None = None
    id_prefix: list[str] | None = None
    labels: ResourceSpecification | None = None
    distinct: bool = False


class EventRelatedFilter(ActionModel):
    """Events with one related resource meeting every criterion given."""

    id: list[str] | None = None
    role: list[str] | None = None
    resources_in_roles: list[tuple[str, str]] | None = None
    labels: ResourceSpecification | None = None


class EventAnyResourceFilter(ActionModel):
    """Events where the own resource or a related one meets every criterion given."""

    id: list[str] | None = None
    id_prefix: list[str] | None = None
    labels: ResourceSpecification | None = None


class EventIDFilter(ActionModel):
    id: list[UUID] | None = None


class EventTextFilter(ActionModel):
    """Case-insensitive text search over the name, resources and payload.

    Space-separated terms: any plain term must appear; ``-term`` or ``!term`` must not;
    ``+term`` must. ``"quoted phrases"`` count as one term.
    """

    query: str = Field(max_length=200)


class EventFilter(ActionModel):
    occurred: EventOccurredFilter = Field(default_factory=EventOccurredFilter)
    event: EventNameFilter | None = None
    resource: EventResourceFilter | None = None
    related: EventRelatedFilter | list[EventRelatedFilter] | None = None
    any_resource: EventAnyResourceFilter | list[EventAnyResourceFilter] | None = None
    id: EventIDFilter = Field(default_factory=EventIDFilter)
    text: EventTextFilter | None = None
    order: EventOrder = EventOrder.DESC

    def related_filters(self) -> list[EventRelatedFilter]:
        """``related`` as a list (each must hold)."""
        if self.related is None:
            return []
        return self.related if isinstance(self.related, list) else [self.related]

    def any_resource_filters(self) -> list[EventAnyResourceFilter]:
        """``any_resource`` as a list (each must hold)."""
        if self.any_resource is None:
            return []
        return self.any_resource if isinstance(self.any_resource, list) else [self.any_resource]


# --- answers ---------------------------------------------------------------------------


class EventPage(WireModel):
    """One page of events, the total matching, and the URL of the next page."""

    events: list[ReceivedEvent]
    total: int
    next_page: str | None = None


class EventCount(WireModel):
    """How many events share one value (a time bucket, an event name, a resource)."""

    value: str
    label: str
    count: int
    start_time: UTCDateTime
    end_time: UTCDateTime


class Countable(str, enum.Enum):
    day = "day"
    time = "time"
    event = "event"
    resource = "resource"


class TimeUnit(str, enum.Enum):
    week = "week"
    day = "day"
    hour = "hour"
    minute = "minute"
    second = "second"

    def as_timedelta(self, interval: float = 1.0) -> timedelta:
        """The length of ``interval`` of these units."""
        seconds = {"week": 604800, "day": 86400, "hour": 3600, "minute": 60, "second": 1}
        return timedelta(seconds=seconds[self.value] * interval)
