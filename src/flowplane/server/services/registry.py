"""The background services the server runs, built against the app's database and bus."""

from __future__ import annotations

from typing import Any

from flowplane.server.services.event_persister import EventPersister
from flowplane.server.services.lease_expiry import LeaseExpiry
from flowplane.server.services.task_run_recorder import TaskRunRecorder
from flowplane.server.slot_waiters import waiters_for


def build_services(app: Any) -> list[Any]:
    """Every service for ``app`` (its ``state.db`` and ``state.bus`` must be set).

    Services subscribe to the bus as they are built, so nothing published after the
    app starts is missed. Add new services to the list; they start in order and stop
    in reverse.
    """
    db = app.state.db
    bus = app.state.bus
    return [
        EventPersister(db, bus),
        TaskRunRecorder(db, bus),
        LeaseExpiry(db, waiters=waiters_for(app)),
    ]
