"""Futures for submitted task runs: ``result()``, ``wait()``, ``state``, plus ``wait`` and ``as_completed`` over many."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar
from uuid import UUID

from flowplane.core.states import StateType
from flowplane.exceptions import UpstreamTaskError

if TYPE_CHECKING:
    from flowplane.sdk._records import TaskRunRecord
    from flowplane.sdk.states import State

R = TypeVar("R")

__all__ = [
    "PrefectFuture",
    "PrefectConcurrentFuture",
    "PrefectFutureList",
    "DoneAndNotDoneFutures",
    "wait",
    "as_completed",
    "resolve_futures_to_states",
    "resolve_futures_to_results",
]


_PENDING, _RUNNING, _FINISHED = "PENDING", "RUNNING", "FINISHED"
_DONE = frozenset({"CANCELLED", "CANCELLED_AND_NOTIFIED", _FINISHED})
#: Guards making a lazy future's condition against its fast, condition-less completion.
_lazy_lock = threading.Lock()


class _LazyFuture(concurrent.futures.Future[Any]):
    """A ``concurrent.futures.Future`` that makes its condition and waiter lists only when needed.

    A plain Future builds a ``Condition`` (an ``RLock``, a deque, five bound methods) and
    two lists up front: a dozen objects the cyclic GC scans again and again while a map
    of 10,000 runs is alive. Most runs finish before anyone waits on them, so here those
    parts are made on first use (waiting, callbacks, ``cancel``, ``concurrent.futures.wait``);
    until then the thread pool starts and completes the future under one module lock,
    which is also the lock the parts are made under, so a waiter never misses the
    completion. Finished futures answer ``done()`` and ``result()`` without locking.
    """

    def __init__(self) -> None:  # the base's parts are made lazily (see _parts)
        self._state = _PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._lazy: tuple[threading.Condition, list[Any], list[Any]] | None = None

    def _parts(self) -> tuple[threading.Condition, list[Any], list[Any]]:
        parts = self._lazy
        if parts is None:
            with _lazy_lock:
                parts = self._lazy
                if parts is None:
                    parts = self._lazy = (threading.Condition(), [], [])
        return parts

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        return self._parts()[0]

    @property
    def _waiters(self) -> list[Any]:  # type: ignore[override]
        return self._parts()[1]

    @property
    def _done_callbacks(self) -> list[Any]:  # type: ignore[override]
        return self._parts()[2]

    def done(self) -> bool:
        return self._state in _DONE

    def result(self, timeout: float | None = None) -> Any:
        if self._state == _FINISHED and self._exception is None:
            return self._result
        return super().result(timeout)

    def set_running_or_notify_cancel(self) -> bool:
        if self._lazy is None:
            with _lazy_lock:
                if self._lazy is None and self._state == _PENDING:
                    self._state = _RUNNING  # untouched, so not cancelled (cancel makes the parts)
                    return True
        return super().set_running_or_notify_cancel()

    def set_result(self, result: Any) -> None:
        if self._lazy is None:
            with _lazy_lock:
                if self._lazy is None and self._state == _RUNNING:
                    self._result = result
                    self._state = _FINISHED
                    return
        super().set_result(result)

    def set_exception(self, exception: BaseException | None) -> None:
        if self._lazy is None:
            with _lazy_lock:
                if self._lazy is None and self._state == _RUNNING:
                    self._exception = exception
                    self._state = _FINISHED
                    return
        super().set_exception(exception)


class PrefectFuture(Generic[R]):
    """A handle on a task run that runs elsewhere (a thread, a process).

    The wrapped ``concurrent.futures.Future`` resolves to the run's record once the run
    has reached its final state; a failed run resolves normally too (its state is
    Failed), so ``wait()`` never raises for the run's own errors.
    """

    __slots__ = ("_record", "_future", "__weakref__")

    def __init__(self, record: TaskRunRecord, future: concurrent.futures.Future[Any]) -> None:
        self._record = record
        self._future = future

    @property
    def task_run_id(self) -> UUID:
        """The id of the task run."""
        return self._record.id

    @property
    def wrapped_future(self) -> concurrent.futures.Future[Any]:
        """The underlying ``concurrent.futures.Future``."""
        return self._future

    @property
    def state(self) -> State[Any]:
        """The task run's state now (final once the future is done)."""
        return self._record.state()

    def done(self) -> bool:
        """Whether the run has finished."""
        return self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the run to finish (at most ``timeout`` seconds; no error when time runs out)."""
        try:
            self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            return
        except BaseException:
            return  # the run itself crashed; its state says so

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The run's result, waiting for it.

        Args:
            timeout: seconds to wait at most.
            raise_on_failure: raise the run's exception if it failed (default).

        Raises:
            TimeoutError: the run did not finish within ``timeout``.
            BaseException: the run's own exception when it failed and ``raise_on_failure``.
        """
        try:
            self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"Task run {self.task_run_id} did not finish within {timeout} seconds"
            ) from None
        record = self._record
        if record.state_type is StateType.COMPLETED and record.final_state is None:
            return record.result  # type: ignore[no-any-return]
        if record.state_type is StateType.PENDING and isinstance(record.result, UpstreamTaskError):
            raise record.result  # it never ran: an upstream run failed
        return record.state().result(raise_on_failure=raise_on_failure)  # type: ignore[no-any-return]

    def add_done_callback(self, fn: Callable[[PrefectFuture[R]], None]) -> None:
        """Call ``fn(self)`` when the run finishes (at once if it has)."""
        self._future.add_done_callback(lambda _: fn(self))

    def __await__(self) -> Generator[Any, None, R]:
        """``await future`` in async code: wait without blocking the event loop, then the result."""
        yield from asyncio.wrap_future(self._future).__await__()
        return self.result()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task_run_id={self.task_run_id}, done={self.done()})"


class PrefectConcurrentFuture(PrefectFuture[R]):
    """A future for a task run on a thread or process pool."""

    __slots__ = ()


class DoneAndNotDoneFutures(NamedTuple):
    """What :func:`wait` returns: the finished and unfinished futures."""

    done: set[PrefectFuture[Any]]
    not_done: set[PrefectFuture[Any]]


class PrefectFutureList(list[PrefectFuture[R]]):
    """A list of futures (what ``Task.map`` returns), waited on or resolved as a whole."""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for all runs to finish (at most ``timeout`` seconds; no error when time runs out)."""
        wait(list(self), timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """The results of all runs, in order; the first failure met is raised as soon as it is seen.

        Raises:
            TimeoutError: not every run finished within ``timeout``.
        """
        try:
            for future in as_completed(self, timeout=timeout):
                if raise_on_failure:
                    future.result(raise_on_failure=True)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"Not every task run finished within {timeout} seconds") from None
        return [f.result(raise_on_failure=raise_on_failure) for f in self]


def wait(
    futures: Iterable[PrefectFuture[Any]], timeout: float | None = None
) -> DoneAndNotDoneFutures:
    """Wait for futures to finish.

    Args:
        futures: the futures (duplicates count once).
        timeout: seconds to wait at most (``None``: until all finish).

    Returns:
        The futures that finished and those that did not.
    """
    finished: set[PrefectFuture[Any]] = set()
    by_inner: dict[concurrent.futures.Future[Any], PrefectFuture[Any]] = {}
    for future in futures:
        if future._future.done():
            finished.add(future)
        else:
            by_inner[future._future] = future
    if not by_inner:
        return DoneAndNotDoneFutures(finished, set())
    done, not_done = concurrent.futures.wait(list(by_inner), timeout=timeout)
    finished.update(by_inner[f] for f in done)
    return DoneAndNotDoneFutures(finished, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[PrefectFuture[R]], timeout: float | None = None
) -> Generator[PrefectFuture[R], None, None]:
    """Yield futures as their runs finish.

    Raises:
        TimeoutError: ``timeout`` seconds passed before all finished.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    by_inner: dict[concurrent.futures.Future[Any], PrefectFuture[R]] = {}
    finished: list[PrefectFuture[R]] = []
    for future in futures:
        inner = future._future
        if inner in by_inner:
            continue
        by_inner[inner] = future
        if inner.done():
            finished.append(future)
    for future in finished:  # those already done first (without a waiter on each)
        del by_inner[future._future]
        yield future
    if by_inner:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        for inner in concurrent.futures.as_completed(list(by_inner), timeout=left):
            yield by_inner[inner]


def _visit(expr: Any, on_future: Callable[[PrefectFuture[Any]], Any]) -> Any:
    if isinstance(expr, PrefectFuture):
        return on_future(expr)
    if isinstance(expr, (list, tuple, set, frozenset)):
        items = [_visit(e, on_future) for e in expr]
        if isinstance(expr, tuple) and hasattr(expr, "_fields"):  # namedtuple
            return type(expr)(*items)
        return type(expr)(items) if not isinstance(expr, PrefectFutureList) else items
    if isinstance(expr, dict):
        return type(expr)((k, _visit(v, on_future)) for k, v in expr.items())
    return expr


def resolve_futures_to_states(expr: Any) -> Any:
    """``expr`` with every future in it (inside lists, tuples, sets, dicts) replaced by its final state."""

    def to_state(future: PrefectFuture[Any]) -> Any:
        future.wait()
        return future.state

    return _visit(expr, to_state)


def resolve_futures_to_results(expr: Any) -> Any:
    """``expr`` with every future in it replaced by its result (failures raise)."""
    return _visit(expr, lambda f: f.result())
