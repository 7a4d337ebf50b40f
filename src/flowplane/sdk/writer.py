"""The background writer: one thread per process and API that ships events and log lines in batches.

Runs append plain dicts and task-run state changes (flat tuples) to a deque (no lock, no
I/O on the caller's thread); the writer thread wakes every ``interval`` seconds, or
sooner once ``batch_size`` items wait, and sends what it has with one ``POST /events``
(the state changes as ``prefect.task-run.*`` events) and one ``POST /logs/``. Embedded,
all of it goes to the in-process API in one hop, and the state changes as plain values.
:meth:`Writer.flush` waits until everything appended before the call has been
accepted by the API; a flow run calls it before it returns, and an ``atexit`` hook
calls it before the process ends, so no log line of a short run is lost.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from flowplane.sdk._records import task_run_change, task_run_event

logger = logging.getLogger("flowplane.writer")

#: Seconds between sends while items trickle in.
DEFAULT_INTERVAL = 0.2
#: Items waiting that wake the writer early (small enough that an in-process API stores
#: a busy run's task runs while it goes on, rather than all at its end).
DEFAULT_BATCH_SIZE = 500
#: Most items per request.
MAX_REQUEST_ITEMS = 5000
#: Items waiting beyond which producers wait for the writer (bounds memory; nothing is dropped).
DEFAULT_MAX_BACKLOG = 10_000

EVENT = 0
LOG = 1


class _Queued(NamedTuple):
    """An event dict or a log line in the queue. Task-run state changes (the engine's flat
    tuples, three per task run) are queued as they are, with no wrapper to allocate and
    for the garbage collector to walk while they wait."""

    kind: int
    payload: dict[str, Any]


class _Marker:
    """A flush request in the queue: set once everything before it is sent."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Writer:
    """Ships events and logs for one API target; see the module docstring.

    Args:
        client_factory: makes the sync client the thread sends with (called on the thread).
        interval: seconds between sends.
        batch_size: items waiting that trigger an early send.
        max_backlog: items waiting beyond which producers block until the writer catches up
            (a run that makes events faster than the API records them slows down instead of
            growing memory without bound and losing what is unsent at exit).
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        interval: float = DEFAULT_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
    ) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self.interval = interval
        self.batch_size = batch_size
        self.max_backlog = max_backlog
        self._room = threading.Condition()
        self._queue: collections.deque[tuple[Any, ...] | _Queued | _Marker] = collections.deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        #: Counters a test can read.
        self.sent_events = 0
        self.sent_logs = 0
        self.failed_requests = 0

    # --- producers (any thread) ---

    def emit_event(self, event: dict[str, Any] | tuple[Any, ...]) -> None:
        """Queue one event: a JSON-ready dict (UUIDs and datetimes allowed), or a task-run
        state change from ``TaskRunRecord.set_state`` (built into its event on this thread)."""
        queue = self._queue
        if type(event) is tuple:
            queue.append(event)
        else:
            queue.append(_Queued(EVENT, event))  # type: ignore[arg-type]
        if self._thread is None:
            self._start()
        elif len(queue) >= self.batch_size:
            self._wake_up()
            if len(queue) >= self.max_backlog:
                self._wait_for_room()

    def emit_log(self, log: dict[str, Any]) -> None:
        """Queue one log line (``LogCreate`` fields)."""
        queue = self._queue
        queue.append(_Queued(LOG, log))
        if self._thread is None:
            self._start()
        elif len(queue) >= self.batch_size:
            self._wake_up()
            if len(queue) >= self.max_backlog:
                self._wait_for_room()

    def _wake_up(self) -> None:
        """Wake the writer. While it is busy the queue stays over ``batch_size`` and every
        append lands here: setting an event already set would still take its lock and
        notify nobody, so it is skipped (the writer clears the event before it drains, so
        an item appended after a clear either is drained or sets the event again)."""
        wake = self._wake
        if not wake.is_set():
            wake.set()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything queued before this call has been sent.

        Args:
            timeout: seconds to wait at most (``None``: no limit).

        Returns:
            True if everything was sent in time.
        """
        thread = self._thread
        if thread is None:
            return True
        if not thread.is_alive() or threading.current_thread() is thread:
            self._drain()  # no writer thread to do it (exiting): send from here
            return True
        marker = _Marker()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def _wait_for_room(self) -> None:
        """Block the producer until the backlog is under ``max_backlog`` (or the writer died)."""
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            return
        with self._room:
            while len(self._queue) >= self.max_backlog and thread.is_alive():
                self._wake.set()
                self._room.wait(0.1)

    def pending(self) -> int:
        """Items waiting to be sent."""
        return len(self._queue)

    # --- the thread ---

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="flowplane-writer", daemon=True)
            self._thread = thread
            thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._drain()
            if self._closed and not self._queue:
                return

    def _drain(self) -> None:
        queue = self._queue
        events: list[Any] = []
        logs: list[Any] = []
        changes: list[tuple[Any, ...]] = []
        markers: list[_Marker] = []
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                break
            if type(item) is tuple:
                changes.append(item)
            elif type(item) is _Queued:
                (logs if item.kind == LOG else events).append(item.payload)
            else:
                markers.append(item)  # type: ignore[arg-type]
                continue
            if len(events) + len(changes) >= MAX_REQUEST_ITEMS or len(logs) >= MAX_REQUEST_ITEMS:
                self._notify_room()
                self._send(events, logs, changes)
                events, logs, changes = [], [], []
        self._notify_room()
        self._send(events, logs, changes)
        for marker in markers:
            marker.done.set()

    def _notify_room(self) -> None:
        with self._room:
            self._room.notify_all()

    def _send(self, events: list[Any], logs: list[Any], changes: list[tuple[Any, ...]]) -> None:
        """Send one batch. Task-run state changes (tuples from ``TaskRunRecord.set_state``)
        go to an embedded API as they are, and as ``prefect.task-run.*`` events otherwise."""
        if not events and not logs and not changes:
            return
        for attempt in (1, 2):
            try:
                if self._client is None:
                    self._client = self._client_factory()
                if getattr(self._client, "embedded", False) and _send_embedded(
                    self._client, events, logs, changes
                ):
                    self.sent_events += len(events) + len(changes)
                    self.sent_logs += len(logs)
                    return
                if changes:
                    events = [task_run_event(change) for change in changes] + events
                    changes = []
                if events:
                    self._client.create_events(events)
                    self.sent_events += len(events)
                    events = []
                if logs:
                    self._client.create_logs(logs)
                    self.sent_logs += len(logs)
                return
            except Exception as exc:  # the writer must outlive a failed request
                # A client can go stale (its embedded server was stopped): retry once with a new one.
                stale, self._client = self._client, None
                try:
                    if stale is not None:
                        stale.close()
                except Exception:
                    pass
                if attempt == 2:
                    self.failed_requests += 1
                    logger.warning(
                        "flowplane could not send %d events and %d log lines: %s",
                        len(events) + len(changes),
                        len(logs),
                        exc,
                    )

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued and stop the thread."""
        self.flush(timeout)
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
            self._client = None
        self._thread = None
        self._closed = False


def _send_embedded(
    client: Any, events: list[Any], logs: list[Any], changes: list[tuple[Any, ...]]
) -> bool:
    """Events, logs and task-run changes to the in-process API in one hop (see
    ``flowplane.embedded``)."""
    from flowplane.embedded import send_batches

    return send_batches(client, events, logs, [task_run_change(c) for c in changes])


# --- one writer per process and API target --------------------------------------------------

_writers: dict[tuple[int, str], Writer] = {}
_writers_lock = threading.Lock()
_atexit_registered = False


def writer_for(key: str, client_factory: Callable[[], Any]) -> Writer:
    """The process's writer for API target ``key`` (created on first use)."""
    global _atexit_registered
    full_key = (os.getpid(), key)
    writer = _writers.get(full_key)
    if writer is not None:
        return writer
    with _writers_lock:
        writer = _writers.get(full_key)
        if writer is None:
            writer = _writers[full_key] = Writer(client_factory)
            if not _atexit_registered:
                # Registered after the embedded server's hook (made with the first client),
                # so it runs first: logs are flushed while the server still serves.
                atexit.register(flush_all_writers)
                _atexit_registered = True
        return writer


def flush_all_writers(timeout: float = 30.0) -> None:
    """Flush every writer of this process (run at exit and on termination signals)."""
    pid = os.getpid()
    for (owner, _), writer in list(_writers.items()):
        if owner == pid:
            writer.flush(timeout)


def close_all_writers(timeout: float = 30.0) -> None:
    """Flush and stop every writer of this process (tests call this between tests)."""
    pid = os.getpid()
    with _writers_lock:
        mine = [(k, w) for k, w in _writers.items() if k[0] == pid]
        for key, _ in mine:
            del _writers[key]
    for _, writer in mine:
        writer.close(timeout)
