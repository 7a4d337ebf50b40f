"""Task definitions: ``@task`` makes an inert, frozen :class:`Task` that runs its function as a tracked task run when called."""

from __future__ import annotations

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
        }

    def with_options(self, **changes: Any) -> Task[P, R]:
        """A copy of this task with some options changed (any keyword of :func:`task`)."""
        return super().with_options(**changes)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, key={self.task_key!r})"

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
        from flowplane.sdk._task_engine import call_task

        return call_task(self, args, kwargs)  # type: ignore[no-any-return]

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> PrefectFuture[R]:
        """Run the task on the flow's task runner; returns a future at once.

        Extra keyword: ``wait_for`` (futures that must finish first).

        Returns:
            A future for the task run.
        """
        from flowplane.sdk._task_engine import submit_task

        return submit_task(self, args, kwargs)

    def map(self, *args: Any, **kwargs: Any) -> PrefectFutureList[R]:
        """Submit one run per element of the iterable arguments (``unmapped(x)`` passes ``x`` to all).

        Returns:
            A list of futures, one per element.

        Raises:
            MappingMissingIterable: no argument is iterable.
            MappingLengthMismatch: the iterables differ in length.
        """
        from flowplane.sdk._task_engine import map_task

        return map_task(self, args, kwargs)


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

    Returns:
        A :class:`Task`, or a decorator making one.
    """
    if __fn is not None:
        return Task(__fn, **options)

    def decorator(fn: Callable[..., Any]) -> Task[Any, Any]:
        return Task(fn, **options)

    return decorator
