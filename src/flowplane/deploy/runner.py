"""Serving flows: ``flow.serve()`` and ``serve(*deployments)`` register deployments and run their runs here.

A served deployment has no work pool: the serving process is its worker. It polls the
API for its deployments' scheduled runs (``/deployments/get_scheduled_flow_runs``),
claims each (Pending), and starts it at its scheduled time as
``python -m flowplane flow-run execute ID --entrypoint FILE:FN`` in the deployment's
folder, in its own process group. The rest is the process worker's loop: ``limit``
runs at once, a run moved to Cancelling has its process group stopped and ends
Cancelled, a process that dies before its run finished marks it Crashed, and
SIGTERM/Ctrl-C stops cleanly (pausing the deployments if ``pause_on_shutdown``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flowplane.deploy.deployments import RunnerDeployment, to_deployment
from flowplane.worker.process import ProcessWorker, WorkerOptions
from flowplane.worker.templates import Launch

if TYPE_CHECKING:
    from flowplane.sdk.flows import Flow

logger = logging.getLogger("flowplane.runner")


class Runner(ProcessWorker):
    """Serves deployments in this process; see the module docstring."""

    def __init__(
        self,
        client: Any,
        name: str | None = None,
        limit: int | None = None,
        pause_on_shutdown: bool = True,
        query_seconds: float = 10.0,
        prefetch_seconds: float = 10.0,
        cancel_grace_seconds: float = 10.0,
    ) -> None:
        options = WorkerOptions(
            pool="",
            name=name or f"runner-{os.getpid()}",
            limit=limit,
            query_seconds=query_seconds,
            prefetch_seconds=prefetch_seconds,
            cancel_check_seconds=min(2.0, query_seconds),
            cancel_grace_seconds=cancel_grace_seconds,
            heartbeat_seconds=3600.0,
        )
        super().__init__(options, client)
        self.pause_on_shutdown = pause_on_shutdown
        self.deployments: dict[UUID, RunnerDeployment] = {}

    def add_deployment(self, deployment: RunnerDeployment) -> UUID:
        """Register ``deployment`` (no work pool: this process runs it) and serve it."""
        deployment.work_pool_name = None
        deployment.work_queue_name = None
        deployment_id = deployment.apply(self.client)
        self.deployments[deployment_id] = deployment
        return deployment_id

    # --- the worker loop's hooks, for deployments instead of a pool ---

    def _ensure_pool(self) -> None:
        if not self.deployments:
            raise ValueError("serve() needs at least one deployment")

    def _heartbeat(self) -> None:
        return None

    def _poll(self) -> None:
        if getattr(self.client, "embedded", False):
            self._schedule_ahead()
        free = self._free_slots()
        if free == 0:
            return
        before = dt.datetime.now(dt.timezone.utc) + dt.timedelta(
            seconds=self.options.prefetch_seconds
        )
        try:
            runs = self.client.get_scheduled_flow_runs_for_deployments(
                list(self.deployments), scheduled_before=before
            )
        except Exception as exc:
            logger.warning("Could not poll for scheduled runs: %s", exc)
            return
        for flow_run in sorted(runs, key=lambda r: r.next_scheduled_start_time or r.created):
            if free is not None and free <= 0:
                break
            if flow_run.id in self.jobs or flow_run.deployment_id not in self.deployments:
                continue
            if self._claim(flow_run) and free is not None:
                free -= 1

    def _schedule_ahead(self) -> None:
        """Embedded (no server): create the next scheduled runs of the served deployments.

        The in-process API runs no scheduler service (a short-lived script would otherwise
        schedule every deployment), so a serving process does it for its own deployments,
        a poll's window at a time. Idempotent: a time already scheduled gets no second run.
        """
        now = dt.datetime.now(dt.timezone.utc)
        end = now + dt.timedelta(seconds=self.options.prefetch_seconds + self.options.query_seconds)
        for deployment_id in self.deployments:
            try:
                self.client.backfill_deployment(deployment_id, now, end)
            except Exception as exc:
                logger.warning("Could not schedule runs of deployment %s: %s", deployment_id, exc)

    def _launch_for(self, flow_run: Any) -> Launch:
        deployment = self.deployments[flow_run.deployment_id]
        env = dict(os.environ)
        api_url = getattr(self.client, "api_url", None)
        if api_url and not getattr(self.client, "embedded", False):
            env["FLOWPLANE_API_URL"] = str(api_url)
        env["FLOWPLANE__FLOW_RUN_ID"] = str(flow_run.id)
        argv = [sys.executable, "-m", "flowplane", "flow-run", "execute", str(flow_run.id)]
        entrypoint = deployment.entrypoint
        if entrypoint and deployment.path:
            where, _, fn = entrypoint.rpartition(":")
            argv += ["--entrypoint", f"{os.path.join(deployment.path, where)}:{fn}"]
        return Launch(argv=argv, env=env, cwd=deployment.path)

    def _shutdown(self) -> None:
        super()._shutdown()
        if self.pause_on_shutdown:
            for deployment_id in self.deployments:
                try:
                    self.client.pause_deployment(deployment_id)
                except Exception as exc:
                    logger.warning("Could not pause deployment %s: %s", deployment_id, exc)


def serve(
    *deployments: RunnerDeployment,
    limit: int | None = None,
    pause_on_shutdown: bool = True,
    print_starting_message: bool = True,
    query_seconds: float | None = None,
    client: Any = None,
) -> None:
    """Register ``deployments`` and run their runs in this process until SIGTERM or Ctrl-C.

    Args:
        deployments: made by ``flow.to_deployment(...)``.
        limit: at most this many runs at once.
        pause_on_shutdown: pause the deployments when serving stops (so no runs pile up).
        print_starting_message: say what is served and how to trigger a run.
        query_seconds: seconds between polls (default: ``FLOWPLANE_RUNNER_POLL_SECONDS`` or 10).

    Raises:
        ValueError: no deployments.
    """
    if not deployments:
        raise ValueError("serve() needs at least one deployment (flow.to_deployment(...))")
    if client is None:
        from flowplane.client import get_client

        with get_client(sync_client=True) as own:
            return serve(
                *deployments,
                limit=limit,
                pause_on_shutdown=pause_on_shutdown,
                print_starting_message=print_starting_message,
                query_seconds=query_seconds,
                client=own,
            )
    seconds = query_seconds or float(os.environ.get("FLOWPLANE_RUNNER_POLL_SECONDS", "10"))
    runner = Runner(
        client,
        limit=limit,
        pause_on_shutdown=pause_on_shutdown,
        query_seconds=seconds,
        prefetch_seconds=seconds,
    )
    for deployment in deployments:
        runner.add_deployment(deployment)
    if print_starting_message:
        names = ", ".join(repr(d.full_name) for d in deployments)
        print(
            f"Serving {names}. Start a run with: flowplane deployment run {deployments[0].full_name!r}"
        )
        print("Stop with Ctrl-C.", flush=True)
    _run_with_signals(runner)
    return None


def _run_with_signals(runner: Runner) -> None:
    """Run ``runner`` until it stops; SIGTERM and Ctrl-C stop it cleanly (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        runner.start()
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def on_signal(signum: int, frame: object) -> None:
        runner.stop()

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        runner.start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def flow_serve(
    flow: Flow[Any, Any],
    name: str | None = None,
    *,
    limit: int | None = None,
    pause_on_shutdown: bool = True,
    print_starting_message: bool = True,
    **options: Any,
) -> None:
    """``flow.serve(...)``: make one deployment of ``flow`` and serve it (see :func:`serve`)."""
    deployment = to_deployment(flow, name or flow.name, **options)
    serve(
        deployment,
        limit=limit,
        pause_on_shutdown=pause_on_shutdown,
        print_starting_message=print_starting_message,
    )


async def aserve(*deployments: RunnerDeployment, **options: Any) -> None:
    """:func:`serve` for async code (it runs in a worker thread; stop it with :meth:`Runner.stop` or the process)."""
    import asyncio

    await asyncio.to_thread(serve, *deployments, **options)


__all__ = ["Runner", "aserve", "flow_serve", "serve"]
