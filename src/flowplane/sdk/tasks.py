"""Task definitions: ``@task`` makes an inert, frozen :class:`Task` that runs its function as a tracked task run when called."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from flowplane.core.retries import DelaySpec, exponential_delays
from flowplane.sdk._callables import CallShape
from flowplane.sdk._definitions import Definition, check_retries, hook_list, is_async

if TYPE_CHECKING:
    from flowplane.sdk.futures import PrefectFuture, PrefectFutureList

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Task", "task", "exponential_backoff"]


#: The task engine module, imported on the first run (it imports much more than defining a
#: task needs); an import statement in ``__call__`` itself cost ~0.45 µs a call.
_engine: Any = None


def _load_engine() -> Any:
    global _engine
    from flowplane.sdk import _task_engine

    _engine = _task_engine
    return _engine


#: "cache_policy not given" (None would be ambiguous).
class _NotSet:
    def __repr__(self) -> str:
        return "NotSet"

    def __reduce__(self) -> str:
        return "_NOT_SET"


_NOT_SET: Any = _NotSet()


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """A ``retry_delay_seconds`` value whose delays double from ``backoff_factor``.

    Args:
        backoff_factor: seconds before the first retry; each later retry waits twice as long.

    Returns:
        A callable mapping the number of retries to their delays.
    """

    def delays(retries: int) -> list[float]:
        return exponential_delays(backoff_factor, retries)

    return delays


def task_key_for(fn: Callable[..., Any]) -> str:
    """A key naming a task by function and code, stable across processes."""
    qualname = getattr(fn, "__qualname__", type(fn).__name__).split(".")[-1]
    code = getattr(fn, "__code__", None)
    if code is None:
        return qualname
    digest = hashlib.md5(code.co_code + repr(code.co_consts).encode(), usedforsecurity=False)
    return f"{qualname}-{digest.hexdigest()[:8]}"


class Task(Definition, Generic[P, R]):
    """A task: a function whose calls are recorded as task runs, with retries, timeouts and hooks.

    Made by :func:`task`; frozen (change it with :meth:`with_options`). Calling it runs
    the function and returns its result (a coroutine for ``async def`` functions);
    :meth:`submit` and :meth:`map` run it on the flow's task runner and return futures.
    """

    persist_result: bool | None
    result_storage: Any
    result_serializer: Any
    result_storage_key: str | None
    _cache_policy_option: Any
    cache_policy: Any
    cache_key_fn: Callable[..., str | None] | None
    cache_expiration: dt.timedelta | None
    refresh_cache: bool | None
    cache_result_in_memory: bool
    results_implied: bool
    results_explicit: bool
    on_commit_hooks: list[Callable[..., Any]]
    on_rollback_hooks: list[Callable[..., Any]]

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        retries: int | None = None,
        retry_delay_seconds: DelaySpec = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[..., bool] | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        task_run_name: str | Callable[..., str] | None = None,
        on_completion: Iterable[Callable[..., Any]] | None = None,
        on_failure: Iterable[Callable[..., Any]] | None = None,
        on_running: Iterable[Callable[..., Any]] | None = None,
        persist_result: bool | None = None,
        result_storage: Any = None,
        result_serializer: Any = None,
        result_storage_key: str | None = None,
        cache_policy: Any = _NOT_SET,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: dt.timedelta | None = None,
        refresh_cache: bool | None = None,
        cache_result_in_memory: bool = True,
        on_commit: Iterable[Callable[..., Any]] | None = None,
        on_rollback: Iterable[Callable[..., Any]] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@task needs a function")
        retry_count, delays = check_retries(retries, retry_delay_seconds, retry_jitter_factor)
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        self.description = description if description is not None else (fn.__doc__ or None)
        self.tags: frozenset[str] = frozenset(tags or ())
        self.sorted_tags = sorted(self.tags)
        self.version = version
        self.retries = retry_count
        #: As given (a callable is expanded into its list of delays).
        self.retry_delay_seconds: Any = (
            list(delays) if callable(retry_delay_seconds) else retry_delay_seconds
        )
        self.retry_delays = delays
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.task_run_name = task_run_name
        self.on_completion_hooks = hook_list(on_completion, "on_completion")
        self.on_failure_hooks = hook_list(on_failure, "on_failure")
        self.on_running_hooks = hook_list(on_running, "on_running")
        self.on_commit_hooks = hook_list(on_commit, "on_commit")
        self.on_rollback_hooks = hook_list(on_rollback, "on_rollback")
        _set_result_options(
            self,
            persist_result,
            result_storage,
            result_serializer,
            result_storage_key,
            cache_policy,
            cache_key_fn,
            cache_expiration,
            refresh_cache,
            cache_result_in_memory,
        )
        self.isasync = is_async(fn)
        self.task_key = task_key_for(fn)
        self.shape = CallShape(fn)
        self.policy = {
            "retries": retry_count,
            "retry_delay": list(delays) if len(delays) > 1 else (delays[0] if delays else 0),
            "retry_jitter_factor": retry_jitter_factor,
        }
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self._freeze()

    def _options(self) -> dict[str, Any]:
        return {
            "fn": self.fn,
            "name": self.name,
            "description": self.description,
            "tags": set(self.tags),
            "version": self.version,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "retry_jitter_factor": self.retry_jitter_factor,
            "retry_condition_fn": self.retry_condition_fn,
            "timeout_seconds": self.timeout_seconds,
            "log_prints": self.log_prints,
            "task_run_name": self.task_run_name,
            "on_completion": list(self.on_completion_hooks),
            "on_failure": list(self.on_failure_hooks),
            "on_running": list(self.on_running_hooks),
            "persist_result": self.persist_result,
            "result_storage": self.result_storage,
            "result_serializer": self.result_serializer,
            "result_storage_key": self.result_storage_key,
            "cache_policy": self._cache_policy_option,
            "cache_key_fn": self.cache_key_fn,
            "cache_expiration": self.cache_expiration,
            "refresh_cache": self.refresh_cache,
            "cache_result_in_memory": self.cache_result_in_memory,
            "on_commit": list(self.on_commit_hooks),
            "on_rollback": list(self.on_rollback_hooks),
        }

    def with_options(self, **changes: Any) -> Task[P, R]:
        """A copy of this task with some options changed (any keyword of :func:`task`)."""
        return super().with_options(**changes)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, key={self.task_key!r})"

    def on_commit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(transaction)`` to run when the run's transaction commits (decorator)."""
        return self._add_hook("on_commit", fn)

    def on_rollback(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(transaction)`` to run when the run's transaction rolls back (decorator)."""
        return self._add_hook("on_rollback", fn)

    def __reduce__(self) -> Any:
        return (_rebuild_task, (self._options(),))

    # --- running ---

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task now and return its result (``return_state=True``: its final state).

        Extra keywords: ``return_state`` (bool) and ``wait_for`` (futures to wait for).

        Raises:
            ParameterBindError: the arguments do not fit the function's signature.
            BaseException: what the function raised, once retries are used up.
        """
        return (_engine or _load_engine()).call_task(self, args, kwargs)  # type: ignore[no-any-return]

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> PrefectFuture[R]:
        """Run the task on the flow's task runner; returns a future at once.

        Extra keyword: ``wait_for`` (futures that must finish first).

        Returns:
            A future for the task run.
        """
        return (_engine or _load_engine()).submit_task(self, args, kwargs)  # type: ignore[no-any-return]

    def map(self, *args: Any, **kwargs: Any) -> PrefectFutureList[R]:
        """Submit one run per element of the iterable arguments (``unmapped(x)`` passes ``x`` to all).

        Returns:
            A list of futures, one per element.

        Raises:
            MappingMissingIterable: no argument is iterable.
            MappingLengthMismatch: the iterables differ in length.
        """
        return (_engine or _load_engine()).map_task(self, args, kwargs)  # type: ignore[no-any-return]


def _set_result_options(
    task: Task[Any, Any],
    persist_result: bool | None,
    result_storage: Any,
    result_serializer: Any,
    result_storage_key: str | None,
    cache_policy: Any,
    cache_key_fn: Callable[..., str | None] | None,
    cache_expiration: dt.timedelta | None,
    refresh_cache: bool | None,
    cache_result_in_memory: bool,
) -> None:
    """Validate and keep the result and cache options (cheap: policies import lazily)."""
    from flowplane.sdk.cache_policies import DEFAULT, CachePolicy, NoCache

    if cache_expiration is not None and not isinstance(cache_expiration, dt.timedelta):
        raise TypeError("cache_expiration must be a datetime.timedelta")
    if cache_policy is not _NOT_SET and not isinstance(cache_policy, CachePolicy):
        raise TypeError(
            f"cache_policy must be a CachePolicy (e.g. INPUTS + TASK_SOURCE), got {cache_policy!r}"
        )
    if result_serializer is not None:
        from flowplane.sdk.serializers import resolve_serializer

        resolve_serializer(result_serializer)  # unknown names fail at definition, not at run time
    policy_set = cache_policy is not _NOT_SET
    if cache_key_fn is not None:
        policy: Any = CachePolicy.from_cache_key_fn(cache_key_fn)
    elif policy_set:
        policy = cache_policy
    else:
        policy = DEFAULT
    if persist_result is False:
        policy = NoCache() if not isinstance(policy, NoCache) else policy
    task.persist_result = persist_result
    task.result_storage = result_storage
    task.result_serializer = result_serializer
    task.result_storage_key = result_storage_key
    task._cache_policy_option = cache_policy
    task.cache_policy = policy
    task.cache_key_fn = cache_key_fn
    task.cache_expiration = cache_expiration
    task.refresh_cache = refresh_cache
    task.cache_result_in_memory = cache_result_in_memory
    #: Options that turn persistence on when ``persist_result`` is not given.
    task.results_implied = bool(
        (policy_set and not isinstance(cache_policy, NoCache))
        or cache_key_fn is not None
        or result_storage is not None
        or result_serializer is not None
        or result_storage_key is not None
    )
    #: Whether any result option was given (the engine's cheap check).
    task.results_explicit = bool(
        task.results_implied
        or persist_result is not None
        or cache_expiration is not None
        or refresh_cache
        or not cache_result_in_memory
    )


def _rebuild_task(options: dict[str, Any]) -> Task[Any, Any]:
    return Task(**options)


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(
    __fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    version: str | None = None,
    retries: int | None = None,
    retry_delay_seconds: DelaySpec = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: Callable[..., bool] | None = None,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    task_run_name: str | Callable[..., str] | None = None,
    on_completion: Iterable[Callable[..., Any]] | None = None,
    on_failure: Iterable[Callable[..., Any]] | None = None,
    on_running: Iterable[Callable[..., Any]] | None = None,
    persist_result: bool | None = None,
    result_storage: Any = None,
    result_serializer: Any = None,
    result_storage_key: str | None = None,
    cache_policy: Any = ...,
    cache_key_fn: Callable[..., str | None] | None = None,
    cache_expiration: dt.timedelta | None = None,
    refresh_cache: bool | None = None,
    cache_result_in_memory: bool = True,
    on_commit: Iterable[Callable[..., Any]] | None = None,
    on_rollback: Iterable[Callable[..., Any]] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Make a function a task, bare (``@task``) or with options (``@task(retries=2)``).

    Args:
        name: the task's name (default: the function's).
        description: shown in the UI (default: the docstring).
        tags: tags for every run of the task.
        version: the task's version.
        retries: how often a failed run is retried.
        retry_delay_seconds: seconds before each retry: a number, a list (one per
            retry, the last repeating) or a callable such as ``exponential_backoff(2)``.
        retry_jitter_factor: spread each delay randomly by up to this fraction.
        retry_condition_fn: ``fn(task, task_run, state) -> bool``; False stops retrying.
        timeout_seconds: fail the run (TimedOut) if it takes longer.
        log_prints: turn ``print`` calls into log lines (default: the flow's setting).
        task_run_name: a ``str.format`` template over the parameters, or a callable.
        on_completion, on_failure, on_running: hooks ``fn(task, task_run, state)``.
        persist_result: store the result (default: the flow's or the settings' default;
            any cache or result option below turns it on).
        result_storage: a folder or fsspec URL (``s3://bucket/prefix``) for the result.
        result_serializer: "pickle" (default), "json", "compressed/pickle",
            "compressed/json" or a Serializer.
        result_storage_key: the result's key, a ``str.format`` template over the
            parameters (``"report-{parameters[day]}"``); also the cache key.
        cache_policy: how the cache key is computed (``INPUTS + TASK_SOURCE``, ...).
        cache_key_fn: ``fn(task_run_context, inputs) -> key`` (None: no caching).
        cache_expiration: how long a cached result stays valid (a timedelta).
        refresh_cache: run even on a cache hit, replacing the record.
        cache_result_in_memory: keep the result in memory after persisting it.
        on_commit, on_rollback: hooks ``fn(transaction)`` run when the run's transaction
            commits or rolls back.

    Returns:
        A :class:`Task`, or a decorator making one.
    """
    if __fn is not None:
        return Task(__fn, **options)

    def decorator(fn: Callable[..., Any]) -> Task[Any, Any]:
        return Task(fn, **options)

    return decorator
