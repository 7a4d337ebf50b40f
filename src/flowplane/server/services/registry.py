"""The background services the server runs, built against the app's database and bus."""

from __future__ import annotations

from typing import Any

from flowplane.server.services.event_persister import EventPersister
from flowplane.server.services.late_runs import LateRuns
from flowplane.server.services.lease_expiry import LeaseExpiry
from flowplane.server.services.pause_expirations import PauseExpirations
from flowplane.server.services.pending_release import PendingRelease
from flowplane.server.services.task_run_recorder import TaskRunRecorder
from flowplane.server.services.zombies import HeartbeatRecorder, ZombieReaper
from flowplane.server.slot_waiters import waiters_for
from flowplane.settings import Settings


def build_services(app: Any) -> list[Any]:
    """Every service for ``app`` (its ``state.db`` and ``state.bus`` must be set).

    Services subscribe to the bus as they are built, so nothing published after the
    app starts is missed. Add new services to the list; they start in order and stop
    in reverse.
    """
    db = app.state.db
    bus = app.state.bus
    settings: Settings = getattr(app.state, "settings", None) or Settings.load()
    services: list[Any] = [
        EventPersister(db, bus),
        TaskRunRecorder(db, bus),
        LeaseExpiry(db, waiters=waiters_for(app)),
    ]
    if settings.server_services_pause_expirations_enabled:
        services.append(
            PauseExpirations(
                db, bus, interval=settings.server_services_pause_expirations_loop_seconds
            )
        )
    if settings.server_services_late_runs_enabled:
        services.append(
            LateRuns(
                db,
                bus,
                interval=settings.server_services_late_runs_loop_seconds,
                after_seconds=settings.server_services_late_runs_after_seconds,
            )
        )
    if settings.server_services_zombies_enabled:
        after = settings.server_services_zombies_after_seconds
        services.append(HeartbeatRecorder(db, bus, after_seconds=after))
        services.append(
            ZombieReaper(
                db, bus, interval=settings.server_services_zombies_loop_seconds, after_seconds=after
            )
        )
    if settings.server_services_scheduler_enabled:
        # Imported only when it runs: embedded mode (most processes) runs no scheduler.
        from flowplane.server.services.scheduler import Scheduler

        services.append(Scheduler.from_settings(db, bus, settings))
    if settings.server_services_pending_release_enabled:
        services.append(
            PendingRelease(
                db,
                bus,
                interval=settings.server_services_pending_release_loop_seconds,
                after_seconds=settings.server_services_pending_release_after_seconds,
            )
        )
    return services
