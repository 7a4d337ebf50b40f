"""The engine's plain per-run bookkeeping, and the task-run state events built from it as dicts.

The hot path never builds pydantic models: a task run is a :class:`TaskRunRecord`
(slots), each state change is a plain event dict queued on the writer. The wire
models (``TaskRun``, SDK ``State``) are built from a record only when user code
asks for them (``get_run_context().task_run``, ``return_state=True``, a future's
``state``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from flowplane.core.states import TERMINAL_TYPES, StateType
from flowplane.schemas.task_run_changes import TaskRunChange

if TYPE_CHECKING:
    from flowplane.schemas.flow_runs import FlowRun
    from flowplane.schemas.task_runs import TaskRun
    from flowplane.sdk.states import State

UTC = dt.timezone.utc


class EventSink(Protocol):
    """Where a run's events and log lines go: the background :class:`Writer`, or a collector."""

    def emit_event(self, event: Any) -> None: ...

    def emit_log(self, log: dict[str, Any]) -> None: ...

    def flush(self, timeout: float | None = ...) -> bool: ...


_now = dt.datetime.now
_getrandbits = random.getrandbits
_time_ns = time.time_ns
_UUID = uuid.UUID
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
_new_object = object.__new__
_set_attribute = object.__setattr__
#: Version 7 in bits 76-79, variant 0b10 in bits 62-63.
_V7_BITS = (0x7 << 76) | (0x2 << 62)
_RANDOM_HIGH = ((1 << 12) - 1) << 64
_RANDOM_LOW = (1 << 62) - 1


def new_id() -> uuid.UUID:
    """A time-ordered (version 7) UUID: 48 bits of Unix milliseconds, then 74 random bits.

    Ids minted one after another sort after one another (to the millisecond), so the
    server's primary-key and foreign-key indexes on task runs, states and events take
    them at their right edge instead of at a random page each (far fewer pages to write
    per commit). Cheaper than ``uuid.uuid4()`` too (no system call); ``random`` is
    reseeded in forked children, so ids stay unique across processes.
    """
    return uuid_of(new_id_int())


def new_id_int() -> int:
    """The 128-bit integer of a new :func:`new_id`, without the ``UUID`` object (half the
    cost): a task run's state ids stay integers until something asks for the UUID."""
    rand = _getrandbits(74)
    return (
        ((_time_ns() // 1_000_000) << 80)
        | _V7_BITS
        | ((rand << 2) & _RANDOM_HIGH)
        | (rand & _RANDOM_LOW)
    )


def uuid_of(value: int) -> uuid.UUID:
    """The UUID of a 128-bit integer made here, as ``uuid.UUID(int=...)`` builds it without
    re-checking its range."""
    made = _new_object(_UUID)
    _set_attribute(made, "int", value)
    _set_attribute(made, "is_safe", _SAFE_UNKNOWN)
    return made


def now() -> dt.datetime:
    """The current time, aware UTC."""
    return _now(UTC)


class FlowRunRecord:
    """What the engine keeps about one flow run while it runs."""

    __slots__ = (
        "id",
        "name",
        "flow_name",
        "flow_run",
        "writer",
        "related",
        "run_count",
        "_keys",
        "_keys_lock",
    )

    def __init__(self, flow_run: FlowRun, flow_name: str, writer: EventSink) -> None:
        self.id = flow_run.id
        self.name = flow_run.name
        self.flow_name = flow_name
        self.flow_run = flow_run
        self.writer = writer
        self.run_count = max(flow_run.run_count, 1)
        #: Related resources every task-run event of this flow run carries.
        self.related: list[dict[str, str]] = [
            {
                "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": flow_run.name,
            },
            {
                "prefect.resource.id": f"prefect.flow.{flow_run.flow_id}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow_name,
            },
        ]
        self._keys: dict[str, itertools.count[int]] = {}
        self._keys_lock = threading.Lock()

    def next_dynamic_key(self, task_key: str) -> str:
        """The next dynamic key for ``task_key`` in this flow run: "0", "1", ... (thread-safe)."""
        counter = self._keys.get(task_key)
        if counter is None:
            with self._keys_lock:
                counter = self._keys.setdefault(task_key, itertools.count())
        return str(next(counter))


_NO_RELATED: list[dict[str, str]] = []
_RUNNING = StateType.RUNNING
_SCHEDULED = StateType.SCHEDULED
_TERMINAL = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)


def task_run_event(change: tuple[Any, ...]) -> dict[str, Any]:
    """The ``prefect.task-run.<State>`` event for a change made by :meth:`TaskRunRecord.set_state`.

    Shaped as Prefect's client emits it: the event id is the state id, ``occurred`` the
    state's time, the payload carries the task run, the validated and the initial state.
    """
    record, state_id, type_, name, ts, message, details, initial_type, initial_name, run_count = (
        change[:10]
    )
    type_value = type_.value
    initial = None
    if initial_type is not None:
        initial = {"type": initial_type.value, "name": initial_name}
    return {
        "id": uuid_of(state_id),
        "occurred": ts,
        "event": f"prefect.task-run.{name}",
        "resource": {
            "prefect.resource.id": f"prefect.task-run.{record.id}",
            "prefect.resource.name": record.name,
            "prefect.run-count": str(run_count),
            "prefect.state-message": message or "",
            "prefect.state-name": name,
            "prefect.state-timestamp": ts.isoformat(),
            "prefect.state-type": type_value,
            "prefect.orchestration": "client",
        },
        "related": _related(record),
        "payload": {
            "intended": {"from": initial["type"] if initial else None, "to": type_value},
            "initial_state": initial,
            "validated_state": {
                "type": type_value,
                "name": name,
                "message": message,
                "state_details": details or {},
                "data": None,
            },
            "task_run": _task_run_payload(change),
        },
    }


_NOT_STARTED = frozenset({StateType.PENDING, StateType.SCHEDULED})


def _related(record: Any) -> list[dict[str, str]]:
    """The related resources of a task run's events: its flow run, flow and tags."""
    related = record.flow_run.related if record.flow_run is not None else _NO_RELATED
    if record.tags:
        related = related + [
            {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
            for tag in record.tags
        ]
    return related


def _task_run_payload(change: tuple[Any, ...]) -> dict[str, Any]:
    """The task run as of this state: the fixed fields plus the bookkeeping a server that
    trusts its clients (Prefect's does) stores as is."""
    record = change[0]
    flow_run = record.flow_run
    payload = {
        "name": record.name,
        "task_key": record.task_key,
        "dynamic_key": record.dynamic_key,
        "flow_run_run_count": flow_run.run_count if flow_run is not None else 0,
        "empirical_policy": record.policy,
        "tags": record.tags,
        "task_inputs": record.task_inputs,
        "task_version": record.task_version,
    }
    type_ = change[2]
    payload["run_count"] = change[9]
    payload["expected_start_time"] = change[13]
    start_time = change[10]
    if type_ not in _NOT_STARTED and start_time is not None:
        payload["start_time"] = start_time
    if type_ in TERMINAL_TYPES:
        payload["end_time"] = change[11]
    payload["total_run_time"] = change[12]
    return payload


def task_run_change(change: tuple[Any, ...]) -> TaskRunChange:
    """A change made by :meth:`TaskRunRecord.set_state` as plain values, for an API in
    this process (embedded mode) that records it without an event in between."""
    record = change[0]
    flow_run = record.flow_run
    # tuple.__new__ on the finished values: the named tuple's own __new__ is a Python
    # function of 22 arguments (a third of this function's cost).
    return _new_tuple(
        TaskRunChange,
        (
            record.id,
            flow_run.id if flow_run is not None else None,
            record.name,
            record.task_key,
            record.dynamic_key,
            record.task_version,
            record.policy,
            record.tags,
            record.task_inputs,
            flow_run.run_count if flow_run is not None else 0,
            change[1],
            change[2].value,
            change[3],
            change[4],
            change[5],
            change[6],
            change[9],
            change[10],
            change[11],
            change[12],
            change[13],
            change[14],
        ),
    )


_new_tuple = tuple.__new__


class TaskRunRecord:
    """What the engine keeps about one task run while it runs (and after, for its future)."""

    __slots__ = (
        "id",
        "name",
        "task_key",
        "dynamic_key",
        "flow_run",
        "tags",
        "created",
        "start_time",
        "end_time",
        "total_run_time",
        "expected_start_time",
        "run_count",
        "resource_name",
        "state_id",
        "state_type",
        "state_name",
        "state_ts",
        "state_message",
        "state_details",
        "result",
        "final_state",
        "policy",
        "task_version",
        "task_inputs",
        "writer",
        "upstream",
        "needs_resolve",
        "state_data",
    )

    def __init__(
        self,
        name: str,
        task_key: str,
        dynamic_key: str,
        flow_run: FlowRunRecord | None,
        tags: list[str],
        policy: dict[str, Any],
        task_version: str | None,
        task_inputs: dict[str, list[dict[str, Any]]],
        writer: EventSink,
    ) -> None:
        self.id = new_id()
        #: Where this run's events go.
        self.writer = writer
        #: Futures this run waits for before it starts.
        self.upstream: list[Any] = []
        #: Whether the parameters hold futures, states or annotations to resolve.
        self.needs_resolve = False
        self.name = name
        self.task_key = task_key
        self.dynamic_key = dynamic_key
        self.flow_run = flow_run
        self.tags = tags
        self.created = now()
        self.start_time: dt.datetime | None = None
        self.end_time: dt.datetime | None = None
        #: Seconds spent Running so far, and when the run was first expected to start.
        self.total_run_time = 0.0
        self.expected_start_time: dt.datetime | None = None
        self.run_count = 0
        self.policy = policy
        self.task_version = task_version
        self.task_inputs = task_inputs
        #: The current state's id, as its 128-bit integer (see :func:`new_id_int`).
        self.state_id: int | None = None
        self.state_type: StateType | None = None
        self.state_name = ""
        self.state_ts = self.created
        self.state_message: str | None = None
        self.state_details: dict[str, Any] | None = None
        #: The in-memory result (or exception) of the final state.
        self.result: Any = None
        #: The SDK State, once someone asked for it.
        self.final_state: State[Any] | None = None
        #: The final state's ``data``: a persisted result's metadata (see ``_task_results``).
        self.state_data: dict[str, Any] | None = None

    # --- state changes ---

    def set_state(
        self,
        type_: StateType,
        name: str,
        message: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> tuple[Any, ...]:
        """Move to a new state; returns the change for :meth:`Writer.emit_event`.

        The change is a flat tuple, turned into the event dict by :func:`task_run_event`
        on the writer thread: nothing nested stays alive between here and the send, so
        the garbage collector has little to look at while the run's caller works.
        """
        ts = _now(UTC)
        state_id = new_id_int()
        initial_type = self.state_type
        initial_name = self.state_name
        # The run's bookkeeping, by the rules of ``core.transitions.bookkeeping`` (a test
        # replays histories through both and compares the results).
        if initial_type is _RUNNING:
            elapsed = (ts - self.state_ts).total_seconds()
            if elapsed > 0:
                self.total_run_time += elapsed
        started = self.start_time
        next_scheduled = None
        if type_ is _RUNNING:
            self.run_count += 1
            if started is None:
                self.start_time = ts
            self.end_time = None
        elif type_ in _TERMINAL:
            self.end_time = ts
            if started is None:
                self.start_time = ts
        elif type_ in _NOT_STARTED:
            self.end_time = None
        if type_ is _SCHEDULED:
            scheduled = (details or {}).get("scheduled_time")
            if isinstance(scheduled, str):
                scheduled = dt.datetime.fromisoformat(scheduled)
            next_scheduled = scheduled or ts
            if self.expected_start_time is None or started is None:
                self.expected_start_time = next_scheduled
        elif self.expected_start_time is None:
            self.expected_start_time = ts if type_ is not _RUNNING else self.start_time
        self.state_id = state_id
        self.state_type = type_
        self.state_name = name
        self.state_ts = ts
        self.state_message = message
        self.state_details = details
        self.final_state = None
        return (
            self,
            state_id,
            type_,
            name,
            ts,
            message,
            details,
            initial_type,
            initial_name,
            self.run_count,
            self.start_time,
            self.end_time,
            self.total_run_time,
            self.expected_start_time,
            next_scheduled,
        )

    # --- wire models, on demand ---

    def state(self) -> State[Any]:
        """The current state as an SDK State (with the in-memory result when final)."""
        from flowplane.schemas.states import StateDetails
        from flowplane.sdk.states import State

        if self.final_state is not None:
            return self.final_state
        details = StateDetails(
            task_run_id=self.id,
            flow_run_id=self.flow_run.id if self.flow_run is not None else None,
            **(self.state_details or {}),
        )
        state: State[Any] = State(
            id=uuid_of(self.state_id) if self.state_id is not None else new_id(),
            timestamp=self.state_ts,
            type=self.state_type or StateType.PENDING,
            name=self.state_name or "Pending",
            message=self.state_message,
            state_details=details,
        )
        if self.state_type in (
            StateType.COMPLETED,
            StateType.FAILED,
            StateType.CRASHED,
            StateType.CANCELLED,
        ):
            state._result = self.result
            if self.state_data is not None:
                state.data = self.state_data
            self.final_state = state
        return state

    def to_task_run(self) -> TaskRun:
        """The task run as the ``TaskRun`` wire model."""
        from flowplane.schemas.task_runs import TaskRun

        return TaskRun(
            id=self.id,
            name=self.name,
            flow_run_id=self.flow_run.id if self.flow_run is not None else None,
            task_key=self.task_key,
            dynamic_key=self.dynamic_key,
            task_version=self.task_version,
            empirical_policy=self.policy,
            tags=list(self.tags),
            task_inputs=self.task_inputs,
            state_id=uuid_of(self.state_id) if self.state_id is not None else None,
            state_type=self.state_type,
            state_name=self.state_name or None,
            run_count=self.run_count,
            flow_run_run_count=self.flow_run.run_count if self.flow_run is not None else 0,
            expected_start_time=self.created,
            start_time=self.start_time,
            end_time=self.end_time,
            created=self.created,
            state=self.state() if self.state_type is not None else None,
        )
