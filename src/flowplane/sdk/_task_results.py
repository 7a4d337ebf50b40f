"""What the task engine does for persisted results, caching and transactions (kept out of the hot path).

A task run takes this path only when it asked for something here (persistence,
a cache policy, commit/rollback hooks), runs inside a ``with transaction():``
block, or persistence is on by default. :func:`needs_results` is the one cheap
check the engine makes; everything else happens in :class:`TaskResults`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from flowplane.core.states import StateType
from flowplane.sdk._records import TaskRunRecord, task_run_event
from flowplane.sdk.cache_policies import NoCache
from flowplane.sdk.transactions import Transaction, _current

if TYPE_CHECKING:
    from flowplane.sdk.context import FlowRunContext, TaskRunContext
    from flowplane.sdk.flows import Flow
    from flowplane.sdk.results import ResultRecord, ResultStore
    from flowplane.sdk.states import State
    from flowplane.sdk.tasks import Task
    from flowplane.settings import Settings

UTC = dt.timezone.utc


class ResultDefaults:
    """What tasks of one flow run (or a standalone task) persist by default, and where."""

    __slots__ = ("persist", "storage", "serializer")

    def __init__(self, persist: bool, storage: Any, serializer: Any) -> None:
        self.persist = persist
        self.storage = storage
        self.serializer = serializer


#: The settings the latest standalone task run was prepared with (every run is prepared
#: just before it runs, in this thread or the one that submitted it).
_standalone_settings: Settings | None = None
#: Standalone runs' defaults, per settings object (settings are cached until they change).
_by_settings: dict[int, tuple[Settings, ResultDefaults]] = {}


def note_settings(settings: Settings) -> None:
    """The settings a standalone task run was prepared with (saves reading them twice)."""
    global _standalone_settings
    _standalone_settings = settings


def _defaults(flow_ctx: FlowRunContext | None) -> ResultDefaults:
    if flow_ctx is not None and flow_ctx.results is not None:
        return flow_ctx.results  # type: ignore[no-any-return]
    settings = _standalone_settings if flow_ctx is None else None
    if settings is None:
        from flowplane.sdk._api import current_settings

        settings = current_settings()
    if flow_ctx is None:
        known = _by_settings.get(id(settings))
        if known is not None and known[0] is settings:
            return known[1]
    flow = flow_ctx.flow if flow_ctx is not None else None
    flow_persist = None
    if flow is not None:
        flow_persist = flow.persist_result
        if flow_persist is None and (flow.result_storage or flow.result_serializer):
            flow_persist = True
    persist = settings.tasks_default_persist_result
    if persist is None:
        persist = flow_persist if flow_persist is not None else settings.results_persist_by_default
    defaults = ResultDefaults(
        bool(persist),
        (flow.result_storage if flow is not None else None) or settings.resolved_result_storage,
        (flow.result_serializer if flow is not None else None)
        or settings.results_default_serializer,
    )
    if flow_ctx is not None:
        flow_ctx.results = defaults
    else:
        if len(_by_settings) > 64:
            _by_settings.clear()
        _by_settings[id(settings)] = (settings, defaults)
    return defaults


def needs_results(task: Task[Any, Any], flow_ctx: FlowRunContext | None) -> bool:
    """Whether a run of ``task`` here takes the results/caching/transaction path."""
    if task.results_explicit or task.on_commit_hooks or task.on_rollback_hooks:
        return True
    if _current.get() is not None:
        return True
    defaults = flow_ctx.results if flow_ctx is not None else None
    if defaults is None:
        defaults = _defaults(flow_ctx)
    return defaults.persist  # type: ignore[no-any-return]


_stores: dict[tuple[Any, ...], ResultStore] = {}


def _store(storage: Any, serializer: Any, lock_manager: Any, in_memory: bool = True) -> ResultStore:
    from flowplane.sdk.results import ResultStore

    cache_key = (
        storage if isinstance(storage, str) else id(storage),
        serializer if isinstance(serializer, str) else id(serializer),
        id(lock_manager),
        in_memory,
    )
    store = _stores.get(cache_key)
    if store is None:
        if len(_stores) > 256:
            _stores.clear()
        store = _stores[cache_key] = ResultStore(
            result_storage=storage,
            serializer=serializer,
            lock_manager=lock_manager,
            cache_result_in_memory=in_memory,
        )
    return store


class TaskResults:
    """One task run's transaction, cache key and result store."""

    __slots__ = ("task", "record", "txn", "store", "persist", "key", "expiration", "cached")

    def __init__(
        self,
        task: Task[Any, Any],
        record: TaskRunRecord,
        ctx: TaskRunContext,
        flow_ctx: FlowRunContext | None,
        parent: Transaction | None,
    ) -> None:
        defaults = _defaults(flow_ctx)
        self.task = task
        self.record = record
        persist = task.persist_result
        if persist is None:
            persist = True if task.results_implied else defaults.persist
        self.persist = persist
        policy = task.cache_policy
        inputs = ctx.parameters
        key: str | None = None
        if persist:
            if task.result_storage_key is not None:
                key = task.result_storage_key.format(parameters=inputs, **inputs)
            elif not isinstance(policy, NoCache):
                flow_parameters = flow_ctx.parameters if flow_ctx is not None else None
                key = policy.compute_key(ctx, inputs, flow_parameters)
        self.key = key
        self.expiration = (
            dt.datetime.now(UTC) + task.cache_expiration
            if key is not None and task.cache_expiration is not None
            else None
        )
        storage = policy.key_storage or task.result_storage or defaults.storage
        serializer = task.result_serializer or defaults.serializer
        self.store = (
            _store(storage, serializer, policy.lock_manager, task.cache_result_in_memory)
            if persist
            else None
        )
        self.txn = Transaction(
            key=key,
            store=self.store,
            isolation_level=policy.isolation_level if key is not None else None,
            overwrite=bool(task.refresh_cache),
        )
        self.txn.parent = parent
        self.cached: ResultRecord | None = None

    def begin(self) -> None:
        """Open the transaction (taking the key's lock under SERIALIZABLE) and look for a cached record."""
        self.txn.begin()
        if self.txn.is_committed():
            record = self.txn.read()
            if record is not None and not record.metadata.is_expired():
                self.cached = record
            else:
                self.txn.state = self.txn.state.__class__.ACTIVE

    def _details(self) -> dict[str, Any] | None:
        if self.key is None:
            return None
        details: dict[str, Any] = {"cache_key": self.key}
        if self.expiration is not None:
            details["cache_expiration"] = self.expiration.isoformat()
        return details

    def emit(self, name: str, metadata: Any, message: str | None = None) -> None:
        """Emit a COMPLETED-type state carrying the result's metadata and the cache key."""
        record = self.record
        change = record.set_state(
            StateType.COMPLETED, name, message=message, details=self._details()
        )
        event = task_run_event(change)
        payload = event["payload"]
        if metadata is not None:
            payload["validated_state"]["data"] = metadata
        if self.key is not None:
            payload["task_run"]["cache_key"] = self.key
            payload["task_run"]["cache_expiration"] = self.expiration
        record.writer.emit_event(event)

    def hit(self) -> None:
        """Finish the run as Cached, with the stored value."""
        assert self.cached is not None
        metadata = self.cached.metadata
        if self.expiration is None and metadata.expiration is not None:
            self.expiration = metadata.expiration
        self.record.result = self.cached.result
        data = metadata.to_dict()
        self.emit("Cached", data)
        self.record.state_data = data

    def stage(self, value: Any) -> dict[str, Any] | None:
        """Stage ``value`` in the transaction (a result record when persisting); its metadata."""
        task = self.task
        rollback_hooks = [self._rolled_back, *task.on_rollback_hooks]
        if self.store is not None:
            # Only records under a cache key are cache records (named after their task);
            # other results get a random key and no task name, so cache clear leaves them.
            result_record = self.store.create_result_record(
                value, self.key, self.expiration, task_name=task.name if self.key else None
            )
            self.txn.stage(result_record, rollback_hooks, list(task.on_commit_hooks))
            return result_record.metadata.to_dict()
        self.txn.stage(value, rollback_hooks, list(task.on_commit_hooks))
        return None

    def complete(self, value: Any, metadata: dict[str, Any] | None) -> None:
        """Record the Completed state (after the transaction closed)."""
        record = self.record
        record.result = value
        self.emit("Completed", metadata)
        if metadata is not None:
            record.state_data = metadata
            if self.task.cache_result_in_memory is False:
                # Keep only the reference: result() loads the value from storage.
                from flowplane.sdk.states import _UNSET

                state = record.state()
                state._result = _UNSET
                record.result = None

    def _rolled_back(self, txn: Transaction) -> None:
        self.emit("RolledBack", None, message="Task rolled back as part of transaction")


# --- flow results -------------------------------------------------------------------------


def persists(flow: Flow[Any, Any], settings: Settings) -> bool:
    """Whether runs of ``flow`` persist their result."""
    if flow.persist_result is not None:
        return flow.persist_result
    if flow.result_storage or flow.result_serializer:
        return True
    return settings.results_persist_by_default


def persist_flow_result(flow: Flow[Any, Any], state: State[Any], settings: Settings) -> State[Any]:
    """Store a completed flow run's return value; the state then carries the record's metadata.

    A value that cannot be stored makes the run Failed, naming why.
    """
    from flowplane.schemas.states import State as WireState
    from flowplane.sdk.states import _UNSET, Failed, is_state_iterable

    value = state._value()
    if value is _UNSET or isinstance(value, WireState) or is_state_iterable(value):
        return state
    store = _store(
        flow.result_storage or settings.resolved_result_storage,
        flow.result_serializer or settings.results_default_serializer,
        None,
        flow.cache_result_in_memory,
    )
    try:
        record = store.write(value)
    except Exception as exc:
        return Failed(
            message=f"The flow run's result could not be persisted: {type(exc).__name__}: {exc}",
            result=exc,
        )
    state.data = record.metadata.to_dict()
    if flow.cache_result_in_memory is False:
        state._result = _UNSET
    return state
