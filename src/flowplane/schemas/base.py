"""Base classes for wire models: objects the API returns and actions it accepts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


#: A datetime that is always aware UTC once validated.
UTCDateTime = Annotated[dt.datetime, AfterValidator(_as_utc)]


def now_utc() -> dt.datetime:
    """The current time, aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


class WireModel(BaseModel):
    """Every wire model: unknown fields are ignored, ORM rows validate directly."""

    model_config = ConfigDict(extra="ignore", from_attributes=True, populate_by_name=True)


class ActionModel(WireModel):
    """A request body: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", from_attributes=True, populate_by_name=True)


class ObjectModel(WireModel):
    """A stored object: an id and its creation and update times."""

    id: UUID = Field(default_factory=uuid4)
    created: UTCDateTime | None = None
    updated: UTCDateTime | None = None


def jsonable(obj: Any) -> Any:
    """Dump a model (or a list of them) to JSON-compatible Python values."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, list):
        return [jsonable(o) for o in obj]
    return obj
