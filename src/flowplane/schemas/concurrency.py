"""Concurrency-limit models: global (v2) limits, slot requests, leases, and the v1 tag-limit views."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from flowplane.core.concurrency import Mode
from flowplane.schemas.base import ActionModel, ObjectModel, WireModel

#: Limit names end up in URL paths, so the characters that break them are refused.
LimitName = Annotated[str, Field(pattern=r"^[^/%&><]+$", min_length=1)]

#: Lease durations a client may ask for: one minute to one day.
LeaseDuration = Annotated[float, Field(ge=60, le=60 * 60 * 24)]

DEFAULT_LEASE_DURATION = 300.0


class ConcurrencyLimitV2(ObjectModel):
    """A global concurrency limit, every counter included (what creating one returns)."""

    active: bool = True
    name: str
    limit: int
    active_slots: int = 0
    denied_slots: int = 0
    slot_decay_per_second: float = 0.0
    avg_slot_occupancy_seconds: float = 2.0


class GlobalConcurrencyLimitResponse(ObjectModel):
    """A global concurrency limit as reads and lists return it."""

    active: bool = True
    name: str
    limit: int
    active_slots: int
    slot_decay_per_second: float = 0.0


class ConcurrencyLimitV2Create(ActionModel):
    active: bool = True
    name: LimitName
    limit: int = Field(ge=0)
    active_slots: int = Field(default=0, ge=0)
    denied_slots: int = Field(default=0, ge=0)
    slot_decay_per_second: float = Field(default=0.0, ge=0)


class ConcurrencyLimitV2Update(ActionModel):
    """Fields to change; ``null`` and absent both mean "leave as is"."""

    active: bool | None = None
    name: LimitName | None = None
    limit: int | None = Field(default=None, ge=0)
    active_slots: int | None = Field(default=None, ge=0)
    denied_slots: int | None = Field(default=None, ge=0)
    slot_decay_per_second: float | None = Field(default=None, ge=0)


class MinimalConcurrencyLimitResponse(WireModel):
    id: UUID
    name: str
    limit: int


class ConcurrencyLeaseHolder(ActionModel):
    """Who holds a lease: a flow run, a task run or a deployment."""

    type: Literal["flow_run", "task_run", "deployment"]
    id: UUID


class ConcurrencyLimitWithLeaseResponse(WireModel):
    lease_id: UUID
    limits: list[MinimalConcurrencyLimitResponse] = Field(default_factory=list)


class SlotsIncrement(WireModel):
    """Take ``slots`` on each named limit (all or none)."""

    slots: int = Field(gt=0)
    names: list[str] = Field(min_length=1)
    mode: Mode = Mode.CONCURRENCY
    #: Accepted and ignored, as by Prefect 3: limits must be created before slots are taken.
    create_if_missing: bool | None = None


class SlotsIncrementWithLease(WireModel):
    """Take ``slots`` on each named limit and hold them under a lease that must be renewed."""

    slots: int = Field(gt=0)
    names: list[str] = Field(min_length=1)
    mode: Mode = Mode.CONCURRENCY
    lease_duration: LeaseDuration = DEFAULT_LEASE_DURATION
    holder: ConcurrencyLeaseHolder | None = None


class SlotsDecrement(WireModel):
    """Give back ``slots`` on each named limit, held for ``occupancy_seconds``."""

    slots: int = Field(gt=0)
    names: list[str] = Field(min_length=1)
    occupancy_seconds: float | None = Field(default=None, gt=0)
    #: Accepted and ignored, as by Prefect 3.
    create_if_missing: bool | None = None


# --- v1: task-run tag limits, views of the global limits named "tag:<tag>" -----------------


class ConcurrencyLimit(ObjectModel):
    """A tag's concurrency limit; ``active_slots`` lists the task runs holding its slots."""

    tag: str
    concurrency_limit: int
    active_slots: list[UUID] = Field(default_factory=list)


class ConcurrencyLimitCreate(ActionModel):
    tag: LimitName
    concurrency_limit: int = Field(ge=0)


class TagSlots(WireModel):
    """Take or give back one slot on each tag's limit for a task run."""

    names: list[str]
    task_run_id: UUID
