"""Flow definitions: ``@flow`` makes an inert, frozen :class:`Flow` that runs its function as a recorded flow run when called."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from flowplane.sdk._callables import CallShape
from flowplane.sdk._definitions import Definition, check_retries, hook_list, is_async

if TYPE_CHECKING:
    from flowplane.sdk.task_runners import TaskRunner

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Flow", "flow"]


class Flow(Definition, Generic[P, R]):
    """A flow: a function whose calls are recorded as flow runs, with the task runs inside them.

    Made by :func:`flow`; frozen (change it with :meth:`with_options`). Calling it runs
    the function as a flow run and returns its result (a coroutine for ``async def``).
    """

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[..., str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | int | None = None,
        task_runner: TaskRunner | type[TaskRunner] | None = None,
        description: str | None = None,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        log_prints: bool | None = None,
        on_completion: Iterable[Callable[..., Any]] | None = None,
        on_failure: Iterable[Callable[..., Any]] | None = None,
        on_cancellation: Iterable[Callable[..., Any]] | None = None,
        on_crashed: Iterable[Callable[..., Any]] | None = None,
        on_running: Iterable[Callable[..., Any]] | None = None,
        persist_result: bool | None = None,
        result_storage: Any = None,
        result_serializer: Any = None,
        cache_result_in_memory: bool = True,
    ) -> None:
        if not callable(fn):
            raise TypeError("@flow needs a function")
        if result_serializer is not None:
            from flowplane.sdk.serializers import resolve_serializer

            resolve_serializer(result_serializer)
        if retry_delay_seconds is not None and not isinstance(retry_delay_seconds, (int, float)):
            raise TypeError("A flow's retry_delay_seconds must be a number of seconds")
        retry_count, _ = check_retries(retries, retry_delay_seconds, None)
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        if isinstance(task_runner, type):
            task_runner = task_runner()
        self.fn = fn
        self.name: str = name or getattr(fn, "__name__", type(fn).__name__).replace("_", "-")
        self.version = version
        self.flow_run_name = flow_run_name
        self.retries = retry_count
        self.retry_delay_seconds = retry_delay_seconds or 0
        self.task_runner = task_runner
        self.description = description if description is not None else (fn.__doc__ or None)
        self.timeout_seconds = timeout_seconds
        self.should_validate_parameters = validate_parameters
        self.log_prints = log_prints
        self.on_completion_hooks = hook_list(on_completion, "on_completion")
        self.on_failure_hooks = hook_list(on_failure, "on_failure")
        self.on_cancellation_hooks = hook_list(on_cancellation, "on_cancellation")
        self.on_crashed_hooks = hook_list(on_crashed, "on_crashed")
        self.on_running_hooks = hook_list(on_running, "on_running")
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.cache_result_in_memory = cache_result_in_memory
        self.isasync = is_async(fn)
        self.shape = CallShape(fn)
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
            "version": self.version,
            "flow_run_name": self.flow_run_name,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "task_runner": self.task_runner,
            "description": self.description,
            "timeout_seconds": self.timeout_seconds,
            "validate_parameters": self.should_validate_parameters,
            "log_prints": self.log_prints,
            "on_completion": list(self.on_completion_hooks),
            "on_failure": list(self.on_failure_hooks),
            "on_cancellation": list(self.on_cancellation_hooks),
            "on_crashed": list(self.on_crashed_hooks),
            "on_running": list(self.on_running_hooks),
            "persist_result": self.persist_result,
            "result_storage": self.result_storage,
            "result_serializer": self.result_serializer,
            "cache_result_in_memory": self.cache_result_in_memory,
        }

    def with_options(self, **changes: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed (any keyword of :func:`flow`)."""
        return super().with_options(**changes)  # type: ignore[no-any-return]

    def on_cancellation(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(flow, flow_run, state)`` to run when a run is cancelled (decorator)."""
        return self._add_hook("on_cancellation", fn)

    def on_crashed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(flow, flow_run, state)`` to run when a run crashes (decorator)."""
        return self._add_hook("on_crashed", fn)

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the flow's parameters (as Prefect's ``ParameterSchema``)."""
        return self.shape.json_schema()

    def validate_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``parameters`` checked against the signature and coerced to the annotated types.

        Returns:
            The parameters, with defaults applied and values validated.

        Raises:
            ParameterBindError: the names do not fit the signature.
            ParameterTypeError: a value does not fit its annotation.
        """
        args, kwargs = self.shape.unbind(parameters)
        bound = self.shape.bind(tuple(args), kwargs)
        return self.shape.validate(bound, f"Flow run of {self.name!r}")

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``parameters`` as JSON values (unserializable ones become ``"<TypeName>"``)."""
        from flowplane.sdk._flow_engine import jsonable_parameters

        return jsonable_parameters(parameters)

    # --- deployments: thin methods over flowplane.deploy's free functions ---

    def to_deployment(self, name: str, **options: Any) -> Any:
        """Describe a deployment of this flow (``serve(*deployments)`` or ``deploy(...)`` registers it).

        Takes ``cron``/``interval``/``rrule``/``schedules``, ``parameters``, ``tags``,
        ``description``, ``version``, ``paused``, ``concurrency_limit``,
        ``work_pool_name``, ``work_queue_name``, ``job_variables``.
        """
        from flowplane.deploy.deployments import to_deployment

        return to_deployment(self, name, **options)

    def serve(self, name: str | None = None, **options: Any) -> None:
        """Create a deployment of this flow and run its runs in this process until stopped.

        Takes :meth:`to_deployment`'s options plus ``limit`` and ``pause_on_shutdown``.
        """
        from flowplane.deploy.runner import flow_serve

        flow_serve(self, name, **options)

    def deploy(self, name: str, work_pool_name: str | None = None, **options: Any) -> Any:
        """Register a deployment of this flow whose runs a worker of ``work_pool_name`` executes; its id."""
        from flowplane.deploy.deployments import flow_deploy

        return flow_deploy(self, name, work_pool_name, **options)

    @classmethod
    def from_source(cls, source: Any, entrypoint: str) -> Flow[Any, Any]:
        """The flow at ``entrypoint`` in ``source`` (a folder or git URL); its deployments fetch that source."""
        from flowplane.deploy.deployments import from_source

        return from_source(source, entrypoint)

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"

    def __reduce__(self) -> Any:
        return (_rebuild_flow, (self._options(),))

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow now and return its result (``return_state=True``: its final state).

        Raises:
            ParameterBindError: the arguments do not fit the signature (no run is created).
            ParameterTypeError: the arguments fail validation (no run is created).
            BaseException: what the flow raised, once retries are used up.
        """
        from flowplane.sdk._flow_engine import call_flow

        return call_flow(self, args, kwargs)  # type: ignore[no-any-return]


def _rebuild_flow(options: dict[str, Any]) -> Flow[Any, Any]:
    return Flow(**options)


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(
    __fn: None = None,
    *,
    name: str | None = None,
    version: str | None = None,
    flow_run_name: str | Callable[..., str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: float | int | None = None,
    task_runner: TaskRunner | type[TaskRunner] | None = None,
    description: str | None = None,
    timeout_seconds: float | None = None,
    validate_parameters: bool = True,
    log_prints: bool | None = None,
    on_completion: Iterable[Callable[..., Any]] | None = None,
    on_failure: Iterable[Callable[..., Any]] | None = None,
    on_cancellation: Iterable[Callable[..., Any]] | None = None,
    on_crashed: Iterable[Callable[..., Any]] | None = None,
    on_running: Iterable[Callable[..., Any]] | None = None,
    persist_result: bool | None = None,
    result_storage: Any = None,
    result_serializer: Any = None,
    cache_result_in_memory: bool = True,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Make a function a flow, bare (``@flow``) or with options (``@flow(retries=1)``).

    Args:
        name: the flow's name (default: the function's, with dashes for underscores).
        version: the flow's version.
        flow_run_name: a ``str.format`` template over the parameters, or a callable.
        retries: how often a failed run is retried (the server schedules each retry).
        retry_delay_seconds: seconds before each retry.
        task_runner: where submitted tasks run (default: a thread pool).
        description: shown in the UI (default: the docstring).
        timeout_seconds: fail the run (TimedOut) if it takes longer.
        validate_parameters: coerce and check call arguments against the annotations.
        log_prints: turn ``print`` calls into log lines of the run.
        on_completion, on_failure, on_cancellation, on_crashed, on_running: hooks
            ``fn(flow, flow_run, state)``.
        persist_result: store the flow's result (and, by default, its tasks' results) so
            ``state.result()`` works in other processes.
        result_storage: a folder or fsspec URL for results (turns persistence on).
        result_serializer: "pickle", "json", "compressed/pickle", "compressed/json" or a
            Serializer (turns persistence on).
        cache_result_in_memory: keep the result in memory after persisting it.

    Returns:
        A :class:`Flow`, or a decorator making one.
    """
    if __fn is not None:
        return Flow(__fn, **options)

    def decorator(fn: Callable[..., Any]) -> Flow[Any, Any]:
        return Flow(fn, **options)

    return decorator


# Prefect's `flow.from_source(...)` is called on the decorator itself.
flow.from_source = Flow.from_source  # type: ignore[attr-defined]
