"""Task runners: where submitted task runs execute — a thread pool (default) or a process pool.

A flow run uses a fresh copy of its flow's runner (:meth:`TaskRunner.duplicate`),
entered for the run's duration; leaving it waits for the runs still going.

The thread pool does not hand each run to ``ThreadPoolExecutor.submit`` (a work item,
a queue put and get and a semaphore per run): submitted runs wait in one FIFO
:class:`_RunQueue`, and up to ``max_workers`` drain jobs on the executor take them
one after another. A ``map`` over 10,000 items thus costs 10,000 futures and deque
operations, not 10,000 executor round trips.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowplane.sdk.futures import PrefectConcurrentFuture, PrefectFuture, _LazyFuture

if TYPE_CHECKING:
    from flowplane.sdk._records import TaskRunRecord
    from flowplane.sdk.tasks import Task

__all__ = ["TaskRunner", "ThreadPoolTaskRunner", "ProcessPoolTaskRunner"]


class TaskRunner:
    """Base of task runners: ``submit`` returns a future; use as a context manager."""

    def __init__(self) -> None:
        self._started = False

    @property
    def name(self) -> str:
        return type(self).__name__.lower().replace("taskrunner", "")

    def duplicate(self) -> TaskRunner:
        """A fresh, unstarted runner configured like this one."""
        raise NotImplementedError

    def submit(
        self,
        task: Task[Any, Any],
        record: TaskRunRecord,
        parameters: dict[str, Any],
        wait_for: Any = None,
    ) -> PrefectFuture[Any]:
        """Start a prepared task run; returns its future."""
        raise NotImplementedError

    def __enter__(self) -> TaskRunner:
        self._started = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._started = False


_copy_context = contextvars.copy_context
_run_prepared_fn: Callable[..., Any] | None = None


def _run_prepared() -> Callable[..., Any]:
    """The engine's ``run_prepared`` (imported on first use: the engine imports this module's users)."""
    global _run_prepared_fn
    if _run_prepared_fn is None:
        from flowplane.sdk._task_engine import run_prepared

        _run_prepared_fn = run_prepared
    return _run_prepared_fn


def _close_thread_loop() -> None:
    """Close the event loop the engine kept in this thread for async runs, if any."""
    from flowplane.sdk._task_engine import close_thread_loop

    close_thread_loop()


def _default_workers() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


#: A queued run: its future, the submitter's context, and what to call in it.
_Entry = tuple[
    "concurrent.futures.Future[Any]", contextvars.Context, Callable[..., Any], tuple[Any, ...]
]


class _RunQueue:
    """Runs waiting for a thread, in submission order, drained by at most ``limit`` jobs on an executor.

    A drain job takes runs until the queue is empty, then ends; :meth:`put` starts a
    new one whenever fewer than ``limit`` are active. A job that finds the queue empty
    counts itself out *before* looking again (under the lock), and ``put`` appends
    *before* reading the count, so a run is never left behind with no job to take it.
    """

    __slots__ = ("_entries", "_lock", "_active", "_limit", "_executor")

    def __init__(self, executor: concurrent.futures.ThreadPoolExecutor, limit: int) -> None:
        self._entries: collections.deque[_Entry] = collections.deque()
        self._lock = threading.Lock()
        self._active = 0
        self._limit = limit
        self._executor = executor

    def put(self, entry: _Entry) -> None:
        self._entries.append(entry)
        if self._active < self._limit:
            with self._lock:
                if self._active >= self._limit:
                    return
                self._active += 1
            try:
                self._executor.submit(self._drain)
            except BaseException:  # the executor is shut down: no new job will come
                with self._lock:
                    self._active -= 1
                    if self._active:
                        return  # a job still draining takes the run
                    try:
                        self._entries.remove(entry)
                    except ValueError:
                        return  # taken meanwhile
                raise

    def _drain(self) -> None:
        try:
            self._take_all()
        finally:
            _close_thread_loop()

    def _take_all(self) -> None:
        take = self._entries.popleft
        while True:
            try:
                future, context, fn, args = take()
            except IndexError:
                with self._lock:
                    self._active -= 1
                    if not self._entries:
                        return
                    self._active += 1
                continue
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            try:
                result = context.run(fn, *args)
            except BaseException as exc:
                future.set_exception(exc)
                del exc
            else:
                future.set_result(result)
                del result
            del future, context, args


class ThreadPoolTaskRunner(TaskRunner):
    """Runs task runs on a pool of threads (async tasks each on an event loop in their thread).

    Args:
        max_workers: the most runs at once (default ``min(32, cpus + 4)``).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.max_workers = max_workers or _default_workers()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._queue: _RunQueue | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> ThreadPoolTaskRunner:
        return type(self)(max_workers=self.max_workers)

    def _runs(self) -> _RunQueue:
        queue = self._queue
        if queue is None:
            with self._lock:
                queue = self._queue
                if queue is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        self.max_workers, thread_name_prefix="flowplane-task"
                    )
                    queue = self._queue = _RunQueue(self._executor, self.max_workers)
        return queue

    def submit(
        self,
        task: Task[Any, Any],
        record: TaskRunRecord,
        parameters: dict[str, Any],
        wait_for: Any = None,
    ) -> PrefectFuture[Any]:
        inner = _LazyFuture()
        self._runs().put(
            (inner, _copy_context(), _run_prepared(), (task, record, parameters, wait_for))
        )
        return PrefectConcurrentFuture(record, inner)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self._queue = None
        if executor is not None:
            executor.shutdown(wait=True)
        super().__exit__(*exc)

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"


class ProcessPoolTaskRunner(TaskRunner):
    """Runs task runs in worker processes (spawned; tasks and arguments travel with cloudpickle).

    The child runs the task and sends back its result with the state events and log
    lines it produced; the parent ships those, so the child never talks to the API.

    Args:
        max_workers: the number of worker processes (default: the CPU count).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.max_workers = max_workers or (os.cpu_count() or 1)
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._relay: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> ProcessPoolTaskRunner:
        return type(self)(max_workers=self.max_workers)

    def _pools(
        self,
    ) -> tuple[concurrent.futures.ProcessPoolExecutor, concurrent.futures.ThreadPoolExecutor]:
        with self._lock:
            if self._executor is None or self._relay is None:
                import multiprocessing

                self._executor = concurrent.futures.ProcessPoolExecutor(
                    self.max_workers, mp_context=multiprocessing.get_context("spawn")
                )
                # One thread per pending run waits for its upstreams and relays the child's events.
                self._relay = concurrent.futures.ThreadPoolExecutor(
                    max(self.max_workers * 4, 8), thread_name_prefix="flowplane-relay"
                )
            return self._executor, self._relay

    def submit(
        self,
        task: Task[Any, Any],
        record: TaskRunRecord,
        parameters: dict[str, Any],
        wait_for: Any = None,
    ) -> PrefectFuture[Any]:
        from flowplane.sdk._process import run_in_process

        executor, relay = self._pools()
        context = contextvars.copy_context()
        inner = relay.submit(
            context.run, run_in_process, executor, task, record, parameters, wait_for
        )
        return PrefectConcurrentFuture(record, inner)

    def __exit__(self, *exc: object) -> None:
        relay, self._relay = self._relay, None
        executor, self._executor = self._executor, None
        if relay is not None:
            relay.shutdown(wait=True)
        if executor is not None:
            executor.shutdown(wait=True)
        super().__exit__(*exc)

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"
