"""Flow-run heartbeats: while a flow run runs, its process says so with a ``prefect.flow-run.heartbeat`` event.

One daemon thread per process serves every flow run in it: each run registered with
:func:`start` gets a heartbeat at once and then every ``flows_heartbeat_frequency``
seconds (setting ``FLOWPLANE_FLOWS_HEARTBEAT_FREQUENCY``)
until :func:`stop`. The events go out through the process's background writer, like
every other event, so a heartbeat costs the run nothing. The server's zombie reaper
marks a Running flow run Crashed when its heartbeats stop; the event's payload names
the interval so the server can tell a missed heartbeat from a slow one.

Events are shaped like the real Prefect client's (resource ``prefect.flow-run.<id>``,
related flow, deployment and tags), so either client's heartbeats drive the reaper.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from flowplane.sdk._records import now

HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"


@dataclass(eq=False)
class Heartbeat:
    """One registered flow run: what its heartbeat says and when the next one is due."""

    writer: Any
    resource: dict[str, str]
    related: list[dict[str, str]]
    interval: float
    due: float = field(default=0.0)

    def event(self) -> dict[str, Any]:
        return {
            "id": uuid.uuid4(),
            "occurred": now(),
            "event": HEARTBEAT_EVENT,
            "resource": self.resource,
            "related": self.related,
            "payload": {"heartbeat_interval_seconds": self.interval},
        }


class _Beater:
    """The process's heartbeat thread and the runs it beats for."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.beats: set[Heartbeat] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def add(self, beat: Heartbeat) -> None:
        beat.writer.emit_event(beat.event())  # the first one now, from the caller's thread
        beat.due = time.monotonic() + beat.interval
        with self.lock:
            self.beats.add(beat)
            if self.thread is None:
                # Started once and kept (idle, it only waits): many short flow runs in one
                # process must not pay for a thread start each.
                self.thread = threading.Thread(
                    target=self._run, name="flowplane-heartbeats", daemon=True
                )
                self.thread.start()
        self.wake.set()

    def remove(self, beat: Heartbeat) -> None:
        with self.lock:
            self.beats.discard(beat)

    def _run(self) -> None:
        while True:
            self.wake.clear()  # before reading the runs: an add() after this wakes the wait
            with self.lock:
                beats = list(self.beats)
            timeout: float | None = None
            if beats:
                clock = time.monotonic()
                for beat in beats:
                    if beat.due <= clock:
                        try:
                            beat.writer.emit_event(beat.event())
                        except Exception:  # a heartbeat must never take the run down
                            pass
                        beat.due = clock + beat.interval
                timeout = max(min(b.due for b in beats) - time.monotonic(), 0.0)
            self.wake.wait(timeout)


_beater: _Beater | None = None
_beater_lock = threading.Lock()


def _process_beater() -> _Beater:
    global _beater
    with _beater_lock:
        if _beater is None or _beater.pid != os.getpid():  # a forked child starts afresh
            _beater = _Beater()
        return _beater


def start(interval: float | None, record: Any, flow_run: Any) -> Heartbeat | None:
    """Begin heartbeats for a flow run; None when heartbeats are off (``interval`` unset).

    Args:
        interval: seconds between heartbeats (the ``flows_heartbeat_frequency`` setting).
        record: the engine's ``FlowRunRecord`` (its writer and related resources).
        flow_run: the flow run as the API returned it.
    """
    if not interval or interval <= 0:
        return None
    related = [r for r in record.related if r.get("prefect.resource.role") != "flow-run"]
    if getattr(flow_run, "deployment_id", None):
        related.append(
            {
                "prefect.resource.id": f"prefect.deployment.{flow_run.deployment_id}",
                "prefect.resource.role": "deployment",
            }
        )
    related += [
        {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
        for tag in sorted(set(getattr(flow_run, "tags", None) or ()))
    ]
    beat = Heartbeat(
        writer=record.writer,
        resource={
            "prefect.resource.id": f"prefect.flow-run.{record.id}",
            "prefect.resource.name": record.name or "",
        },
        related=related,
        interval=float(interval),
    )
    _process_beater().add(beat)
    return beat


def stop(beat: Heartbeat | None) -> None:
    """End a flow run's heartbeats (the run reached its final state or its process is leaving)."""
    if beat is not None:
        _process_beater().remove(beat)
