"""Task runners: where submitted task runs execute — a thread pool (default) or a process pool.

A flow run uses a fresh copy of its flow's runner (:meth:`TaskRunner.duplicate`),
entered for the run's duration; leaving it waits for the runs still going.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import os
import threading
from typing import TYPE_CHECKING, Any

from flowplane.sdk.futures import PrefectConcurrentFuture, PrefectFuture

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


def _default_workers() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


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
        self._lock = threading.Lock()

    def duplicate(self) -> ThreadPoolTaskRunner:
        return type(self)(max_workers=self.max_workers)

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._lock:
                executor = self._executor
                if executor is None:
                    executor = self._executor = concurrent.futures.ThreadPoolExecutor(
                        self.max_workers, thread_name_prefix="flowplane-task"
                    )
        return executor

    def submit(
        self,
        task: Task[Any, Any],
        record: TaskRunRecord,
        parameters: dict[str, Any],
        wait_for: Any = None,
    ) -> PrefectFuture[Any]:
        from flowplane.sdk._task_engine import run_prepared

        context = contextvars.copy_context()
        inner = self._pool().submit(context.run, run_prepared, task, record, parameters, wait_for)
        return PrefectConcurrentFuture(record, inner)

    def __exit__(self, *exc: object) -> None:
        executor, self._executor = self._executor, None
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
