"""Client operations on concurrency limits: tag (v1) limits, global (v2) limits, slots and leases."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import Any
from uuid import UUID

from flowplane.client._operations import as_uuid, body, dump, enum_value, operation
from flowplane.client._protocol import Call, model, models, nothing
from flowplane.exceptions import ObjectNotFound
from flowplane.schemas.concurrency import (
    ConcurrencyLimit,
    ConcurrencyLimitV2,
    ConcurrencyLimitV2Create,
    ConcurrencyLimitV2Update,
    ConcurrencyLimitWithLeaseResponse,
    GlobalConcurrencyLimitResponse,
    MinimalConcurrencyLimitResponse,
)

V2 = "/v2/concurrency_limits"


def _names(names: str | Iterable[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _holder(holder: Any) -> Any:
    if holder is None:
        return None
    if isinstance(holder, Mapping):
        return {"type": holder["type"], "id": str(holder["id"])}
    return dump(holder)


def _wait_params(wait: float | None) -> dict[str, Any] | None:
    """The flowplane-only long-poll: the server holds a refused request up to ``wait`` seconds."""
    return {"wait": round(wait, 3)} if wait else None


class ConcurrencyLimitOperations:
    """Concurrency limits: per-tag task-run limits (v1) and named global limits (v2)."""

    # --- v1: task-run tag limits ---------------------------------------------------------

    @operation
    def create_concurrency_limit(self, tag: str, concurrency_limit: int) -> Call[UUID]:
        """Create the tag's concurrency limit, or set the limit of the existing one.

        Returns:
            The limit's id.
        """
        payload = {"tag": tag, "concurrency_limit": concurrency_limit}
        return Call(
            "POST",
            "/concurrency_limits/",
            lambda r: ConcurrencyLimit.model_validate_json(r.content).id,
            json=payload,
        )

    @operation
    def read_concurrency_limit_by_tag(self, tag: str) -> Call[ConcurrencyLimit]:
        """The tag's limit with the task runs holding its slots.

        Raises:
            ObjectNotFound: the tag has no limit.
        """
        return Call("GET", f"/concurrency_limits/tag/{tag}", model(ConcurrencyLimit))

    @operation
    def read_concurrency_limits(
        self, limit: int | None = None, offset: int = 0
    ) -> Call[list[ConcurrencyLimit]]:
        """Every tag limit, ordered by tag."""
        payload = body(limit=limit, offset=offset)
        return Call("POST", "/concurrency_limits/filter", models(ConcurrencyLimit), json=payload)

    @operation
    def reset_concurrency_limit_by_tag(
        self, tag: str, slot_override: Iterable[UUID | str] | None = None
    ) -> Call[None]:
        """Free every slot of the tag's limit (or hand them to the task runs in ``slot_override``).

        Raises:
            ObjectNotFound: the tag has no limit.
        """
        override = [str(as_uuid(i)) for i in slot_override] if slot_override is not None else None
        return Call(
            "POST",
            f"/concurrency_limits/tag/{tag}/reset",
            nothing,
            json={"slot_override": override},
        )

    @operation
    def delete_concurrency_limit_by_tag(self, tag: str) -> Call[None]:
        """Delete the tag's limit.

        Raises:
            ObjectNotFound: the tag has no limit.
        """
        return Call("DELETE", f"/concurrency_limits/tag/{tag}", nothing)

    @operation
    def increment_v1_concurrency_slots(
        self, names: Iterable[str], task_run_id: UUID | str, *, wait: float | None = None
    ) -> Call[list[MinimalConcurrencyLimitResponse]]:
        """Take one slot on each tag's limit for a task run (423 ``HTTPStatusError`` when full).

        Args:
            wait: flowplane servers only: how long the server may hold the request
                for a slot to come free before answering 423.
        """
        payload = {"names": list(names), "task_run_id": str(as_uuid(task_run_id))}
        return Call(
            "POST",
            "/concurrency_limits/increment",
            models(MinimalConcurrencyLimitResponse),
            json=payload,
            params=_wait_params(wait),
        )

    @operation
    def decrement_v1_concurrency_slots(
        self, names: Iterable[str], task_run_id: UUID | str, occupancy_seconds: float = 0.0
    ) -> Call[list[MinimalConcurrencyLimitResponse]]:
        """Give back the task run's slots on each tag's limit."""
        payload = {
            "names": list(names),
            "task_run_id": str(as_uuid(task_run_id)),
            "occupancy_seconds": occupancy_seconds,
        }
        return Call(
            "POST",
            "/concurrency_limits/decrement",
            models(MinimalConcurrencyLimitResponse),
            json=payload,
        )

    # --- v2: global limits ---------------------------------------------------------------

    @operation
    def create_global_concurrency_limit(
        self, concurrency_limit: ConcurrencyLimitV2Create | Mapping[str, Any]
    ) -> Call[UUID]:
        """Create a global concurrency limit.

        Returns:
            The new limit's id.

        Raises:
            ObjectAlreadyExists: a limit with that name exists.
        """
        return Call(
            "POST",
            f"{V2}/",
            lambda r: ConcurrencyLimitV2.model_validate_json(r.content).id,
            json=dump(concurrency_limit),
        )

    @operation
    def update_global_concurrency_limit(
        self, name: str, concurrency_limit: ConcurrencyLimitV2Update | Mapping[str, Any]
    ) -> Call[None]:
        """Change a global limit (by name or id); fields left out stay as they are.

        Raises:
            ObjectNotFound: there is no such limit.
        """
        return Call("PATCH", f"{V2}/{name}", nothing, json=dump(concurrency_limit))

    @operation
    def delete_global_concurrency_limit_by_name(self, name: str) -> Call[None]:
        """Delete a global limit (by name or id).

        Raises:
            ObjectNotFound: there is no such limit.
        """
        return Call("DELETE", f"{V2}/{name}", nothing)

    @operation
    def read_global_concurrency_limit_by_name(
        self, name: str
    ) -> Call[GlobalConcurrencyLimitResponse]:
        """A global limit (by name or id), its slot count decayed to now.

        Raises:
            ObjectNotFound: there is no such limit.
        """
        return Call("GET", f"{V2}/{name}", model(GlobalConcurrencyLimitResponse))

    @operation
    def upsert_global_concurrency_limit_by_name(
        self, name: str, limit: int
    ) -> Generator[Call[Any], Any, None]:
        """Set the limit of the named global limit, creating it (active) if it does not exist."""
        try:
            yield Call("GET", f"{V2}/{name}", model(GlobalConcurrencyLimitResponse))
        except ObjectNotFound:
            yield Call("POST", f"{V2}/", nothing, json={"name": name, "limit": limit})
            return
        yield Call("PATCH", f"{V2}/{name}", nothing, json={"limit": limit})

    @operation
    def read_global_concurrency_limits(
        self, limit: int = 10, offset: int = 0
    ) -> Call[list[GlobalConcurrencyLimitResponse]]:
        """Global limits (tag limits included, as ``tag:<tag>``), ordered by name."""
        payload = body(limit=limit, offset=offset)
        return Call("POST", f"{V2}/filter", models(GlobalConcurrencyLimitResponse), json=payload)

    # --- v2: slots and leases ------------------------------------------------------------

    @operation
    def increment_concurrency_slots(
        self,
        names: str | Iterable[str],
        slots: int,
        mode: str = "concurrency",
        *,
        wait: float | None = None,
    ) -> Call[list[MinimalConcurrencyLimitResponse]]:
        """Take ``slots`` on every named limit, all or none, without a lease.

        Args:
            wait: flowplane servers only: how long the server may hold the request
                for slots to come free before answering 423.

        Returns:
            The limits found (empty when none of the names exist: nothing was taken).

        Raises:
            HTTPStatusError: 423 when the slots are not free; 422 when they never can be.
        """
        payload = {"names": _names(names), "slots": slots, "mode": enum_value(mode)}
        return Call(
            "POST",
            f"{V2}/increment",
            models(MinimalConcurrencyLimitResponse),
            json=payload,
            params=_wait_params(wait),
        )

    @operation
    def increment_concurrency_slots_with_lease(
        self,
        names: str | Iterable[str],
        slots: int,
        mode: str = "concurrency",
        lease_duration: float = 300,
        holder: Any = None,
        *,
        wait: float | None = None,
    ) -> Call[ConcurrencyLimitWithLeaseResponse]:
        """Take ``slots`` on every named limit under a lease the caller renews.

        Args:
            lease_duration: seconds until the lease lapses unless renewed (60 to 86,400).
            holder: who holds it: ``{"type": "task_run"|"flow_run"|"deployment", "id": ...}``.
            wait: flowplane servers only: how long the server may hold the request
                for slots to come free before answering 423.

        Raises:
            HTTPStatusError: 423 when the slots are not free; 422 when they never can be.
        """
        payload = body(
            names=_names(names),
            slots=slots,
            mode=enum_value(mode),
            lease_duration=lease_duration,
            holder=_holder(holder),
        )
        return Call(
            "POST",
            f"{V2}/increment-with-lease",
            model(ConcurrencyLimitWithLeaseResponse),
            json=payload,
            params=_wait_params(wait),
        )

    @operation
    def renew_concurrency_lease(
        self, lease_id: UUID | str, lease_duration: float = 300
    ) -> Call[None]:
        """Push a lease's expiration to ``lease_duration`` seconds from now.

        Raises:
            HTTPStatusError: 410 when the lease expired or was released.
        """
        return Call(
            "POST",
            f"{V2}/leases/{as_uuid(lease_id)}/renew",
            nothing,
            json={"lease_duration": lease_duration},
        )

    @operation
    def release_concurrency_slots(
        self, names: str | Iterable[str], slots: int, occupancy_seconds: float | None = None
    ) -> Call[list[MinimalConcurrencyLimitResponse]]:
        """Give back slots taken with :meth:`increment_concurrency_slots`."""
        payload = body(names=_names(names), slots=slots, occupancy_seconds=occupancy_seconds)
        return Call(
            "POST", f"{V2}/decrement", models(MinimalConcurrencyLimitResponse), json=payload
        )

    @operation
    def release_concurrency_slots_with_lease(self, lease_id: UUID | str) -> Call[None]:
        """Release a lease and give back its slots (an unknown lease is no error)."""
        return Call(
            "POST",
            f"{V2}/decrement-with-lease",
            nothing,
            json={"lease_id": str(as_uuid(lease_id))},
        )
