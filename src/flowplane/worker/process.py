"""The process worker: poll a work pool, claim runs, start each as a subprocess, watch it to the end.

One loop in one thread, ticking a few times a second:

- every ``query_seconds`` it heartbeats and asks the pool for runs scheduled up to
  ``prefetch_seconds`` ahead (the server hands each run to one worker only), then
  claims each by proposing Pending — a run another worker claimed first is refused
  and skipped;
- a claimed run is launched ``launch_ahead_seconds`` before its scheduled time (the
  process imports and loads its flow, then waits for the time itself, so the flow
  starts on time rather than a Python start-up late): its deployment's job variables
  over the pool's base job template give the command, environment and folder, and
  the process starts in its own session (so it and its children can be stopped as
  one group);
- a process that exits while its run is not finished marks the run Crashed;
- a run someone moved to Cancelling has its process group terminated (SIGTERM, then
  SIGKILL after ``cancel_grace_seconds``) and ends Cancelled;
- SIGTERM or Ctrl-C stops claiming; running processes are asked to stop (each
  records its run Crashed as it goes) and the worker exits once they have.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from flowplane.core.job_templates import PROCESS_TEMPLATE
from flowplane.worker.templates import Launch, launch_for

logger = logging.getLogger("flowplane.worker")

#: States in which a run whose process has exited was cut short (Paused/Suspended and
#: Scheduled are fine: it was suspended, or rescheduled, and runs again later).
STILL_RUNNING = frozenset({"PENDING", "RUNNING"})


@dataclass
class WorkerOptions:
    """How a worker polls and runs (``flowplane worker start`` options)."""

    pool: str
    name: str | None = None
    work_queues: list[str] = field(default_factory=list)
    type: str = "process"
    limit: int | None = None
    query_seconds: float = 2.0
    prefetch_seconds: float = 10.0
    heartbeat_seconds: float = 30.0
    cancel_check_seconds: float = 2.0
    cancel_grace_seconds: float = 10.0
    #: Start a run's process this long before its scheduled time (it waits for the time).
    launch_ahead_seconds: float = 5.0
    run_once: bool = False
    create_pool_if_missing: bool = True


@dataclass
class _Job:
    flow_run: Any
    launch: Launch
    start_at: float
    process: subprocess.Popen[bytes] | None = None
    cancelling: bool = False


class ProcessWorker:
    """Runs a work pool's flow runs as local processes; see the module docstring."""

    def __init__(self, options: WorkerOptions, client: Any) -> None:
        self.options = options
        self.client = client
        self.name = options.name or f"ProcessWorker {socket.gethostname()}-{os.getpid()}"
        self.jobs: dict[UUID, _Job] = {}
        self.stopping = threading.Event()
        #: When the last poll of the pool succeeded (monotonic), for the health check.
        self.last_poll: float | None = None
        self.launched = 0
        self._template: dict[str, Any] = {}
        self._deployments: dict[UUID, Any] = {}

    # --- the loop ---

    def start(self) -> None:
        """Poll and run until stopped (SIGTERM, Ctrl-C, :meth:`stop`, or ``run_once`` done)."""
        self._ensure_pool()
        next_poll = next_heartbeat = next_cancel_check = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_heartbeat:
                self._heartbeat()
                next_heartbeat = now + self.options.heartbeat_seconds
            if now >= next_poll:
                self._poll()
                next_poll = now + self.options.query_seconds
            self._launch_due()
            if self._reap() and self.options.limit is not None:
                next_poll = 0.0  # a slot came free: look for more work now
            if self.jobs and now >= next_cancel_check:
                self._check_cancellations()
                next_cancel_check = now + self.options.cancel_check_seconds
            if self.options.run_once and not self.jobs:
                break
            self.stopping.wait(0.1)
        self._shutdown()

    def stop(self) -> None:
        self.stopping.set()

    # --- the pool ---

    def _ensure_pool(self) -> None:
        from flowplane.exceptions import ObjectNotFound

        try:
            pool = self.client.read_work_pool(self.options.pool)
        except ObjectNotFound:
            if not self.options.create_pool_if_missing:
                raise
            logger.info("Work pool %r does not exist; creating it.", self.options.pool)
            pool = self.client.create_work_pool(
                {
                    "name": self.options.pool,
                    "type": self.options.type,
                    "base_job_template": PROCESS_TEMPLATE,
                }
            )
        self._template = pool.base_job_template or PROCESS_TEMPLATE
        if pool.type not in (self.options.type, "prefect-agent"):
            logger.warning(
                "Work pool %r is of type %r; this worker runs %r jobs.",
                pool.name,
                pool.type,
                self.options.type,
            )

    def _heartbeat(self) -> None:
        try:
            self.client.send_worker_heartbeat(
                self.options.pool,
                self.name,
                heartbeat_interval_seconds=int(self.options.heartbeat_seconds),
            )
        except Exception as exc:  # a missed heartbeat must not stop the worker
            logger.warning("Heartbeat failed: %s", exc)

    def _free_slots(self) -> int | None:
        if self.options.limit is None:
            return None
        return max(self.options.limit - len(self.jobs), 0)

    def _poll(self) -> None:
        free = self._free_slots()
        if free == 0:
            return
        before = dt.datetime.now(dt.timezone.utc) + dt.timedelta(
            seconds=self.options.prefetch_seconds
        )
        try:
            self._template = (
                self.client.read_work_pool(self.options.pool).base_job_template or self._template
            )
            responses = self.client.get_scheduled_flow_runs_for_work_pool(
                self.options.pool,
                work_queue_names=self.options.work_queues or None,
                scheduled_before=before,
                limit=free,  # claim no more than can be started: claims hold runs from others
            )
        except Exception as exc:
            logger.warning("Could not poll work pool %r: %s", self.options.pool, exc)
            return
        self.last_poll = time.monotonic()
        self._deployments.clear()
        if responses:
            logger.info(
                "Found %d scheduled flow run(s) in work pool %r.", len(responses), self.options.pool
            )
        for response in responses:
            if free is not None and free <= 0:
                break
            flow_run = getattr(response, "flow_run", response)
            if flow_run.id in self.jobs:
                continue
            if self._claim(flow_run):
                if free is not None:
                    free -= 1

    def _claim(self, flow_run: Any) -> bool:
        """Propose Pending for ``flow_run``; prepare its launch if this worker got it."""
        try:
            result = self.client.set_flow_run_state(
                flow_run.id, {"type": "PENDING", "name": "Pending"}
            )
        except Exception as exc:
            logger.warning("Could not claim flow run %s: %s", flow_run.id, exc)
            return False
        if result.status.value != "ACCEPT":
            return False  # another worker took it, or it was cancelled meanwhile
        try:
            launch = self._launch_for(flow_run)
        except Exception as exc:
            self._crash(flow_run.id, f"Could not prepare the flow run's process: {exc}")
            return False
        scheduled = getattr(flow_run, "next_scheduled_start_time", None) or getattr(
            flow_run, "expected_start_time", None
        )
        delay = 0.0
        if scheduled is not None:
            delay = max((scheduled - dt.datetime.now(dt.timezone.utc)).total_seconds(), 0.0)
        if launch.waits_for_start:
            delay = max(delay - self.options.launch_ahead_seconds, 0.0)
        self.jobs[flow_run.id] = _Job(flow_run, launch, time.monotonic() + delay)
        return True

    def _launch_for(self, flow_run: Any) -> Launch:
        from flowplane.core.job_templates import render

        variables: dict[str, Any] = {}
        deployment_id = getattr(flow_run, "deployment_id", None)
        if deployment_id is not None:
            if deployment_id not in self._deployments:  # once per deployment per poll
                self._deployments[deployment_id] = self.client.read_deployment(deployment_id)
            deployment = self._deployments[deployment_id]
            variables.update(getattr(deployment, "job_variables", None) or {})
        variables.update(getattr(flow_run, "job_variables", None) or {})
        configuration = render(self._template, variables)
        env = dict(os.environ)
        api_url = getattr(getattr(self.client, "settings", None), "api_url", None)
        if api_url:
            env["FLOWPLANE_API_URL"] = str(api_url)
        return launch_for(flow_run.id, configuration, env)

    # --- processes ---

    def _launch_due(self) -> None:
        now = time.monotonic()
        for run_id, job in list(self.jobs.items()):
            if job.process is None and not self.stopping.is_set() and job.start_at <= now:
                self._launch(run_id, job)

    def _launch(self, run_id: UUID, job: _Job) -> None:
        launch = job.launch
        output = None if launch.stream_output else subprocess.DEVNULL
        try:
            job.process = subprocess.Popen(  # noqa: S603 - the pool's configured command
                launch.argv,
                env=launch.env,
                cwd=launch.cwd,
                stdout=output,
                stderr=output,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            del self.jobs[run_id]
            self._crash(run_id, f"Could not start the flow run's process {launch.argv[0]}: {exc}")
            return
        self.launched += 1
        logger.info("Started flow run %s in process %d.", run_id, job.process.pid)

    def _reap(self) -> int:
        """Record the end of every exited process; how many there were."""
        reaped = 0
        for run_id, job in list(self.jobs.items()):
            if job.process is None or job.process.poll() is None:
                continue
            reaped += 1
            code = job.process.returncode
            del self.jobs[run_id]
            state = self._state_of(run_id)
            if job.cancelling:
                if state != "CANCELLED":  # flowplane's executor records it itself
                    self._set(
                        run_id, "CANCELLED", "Cancelled", "The flow run's process was stopped."
                    )
                logger.info("Flow run %s cancelled.", run_id)
            elif state == "PENDING" and self.stopping.is_set():
                # Started ahead of its time and stopped before it began: nothing of it
                # ran, so it goes back to the pool for another worker.
                self._set(run_id, "SCHEDULED", "Scheduled", "Its worker stopped before it started.")
            elif state in STILL_RUNNING:
                self._crash(
                    run_id, f"The flow run's process exited with status {code} before it finished."
                )
            else:
                logger.info("Flow run %s's process exited with status %d.", run_id, code)
        return reaped

    def _check_cancellations(self) -> None:
        ids = [str(run_id) for run_id in self.jobs]
        try:
            runs = self.client.read_flow_runs(
                flow_run_filter={
                    "id": {"any_": ids},
                    "state": {"type": {"any_": ["CANCELLING", "CANCELLED"]}},
                }
            )
        except Exception as exc:
            logger.warning("Could not check for cancelled runs: %s", exc)
            return
        for run in runs:
            job = self.jobs.get(run.id)
            if job is None or job.cancelling:
                continue
            job.cancelling = True
            if job.process is None:  # not started yet: nothing to stop
                del self.jobs[run.id]
                self._set(run.id, "CANCELLED", "Cancelled", "Cancelled before it started.")
                continue
            logger.info("Cancelling flow run %s: stopping process %d.", run.id, job.process.pid)
            _stop_group(job.process, self.options.cancel_grace_seconds)

    def _shutdown(self) -> None:
        """Stop launching; ask running processes to stop and wait for them."""
        for run_id, job in list(self.jobs.items()):
            if job.process is None:
                # Claimed but not started: give it back to the pool.
                self._set(run_id, "SCHEDULED", "Scheduled", "Its worker stopped before it started.")
                del self.jobs[run_id]
        processes = [job.process for job in self.jobs.values() if job.process is not None]
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.options.cancel_grace_seconds
        for process in processes:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        self._reap()

    # --- states ---

    def _state_of(self, run_id: UUID) -> str | None:
        try:
            run = self.client.read_flow_run(run_id)
        except Exception:
            return None
        return run.state.type.value if run.state is not None else None

    def _set(self, run_id: UUID, type_: str, name: str, message: str) -> None:
        try:
            self.client.set_flow_run_state(
                run_id, {"type": type_, "name": name, "message": message}, force=True
            )
        except Exception as exc:
            logger.warning("Could not set flow run %s to %s: %s", run_id, name, exc)

    def _crash(self, run_id: UUID, message: str) -> None:
        logger.error("Flow run %s crashed: %s", run_id, message)
        self._set(run_id, "CRASHED", "Crashed", message)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group; SIGKILL it if it is still there after ``grace`` seconds."""
    _signal_group(process, signal.SIGTERM)

    def finish() -> None:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)

    threading.Thread(target=finish, name="flowplane-worker-stop", daemon=True).start()


__all__ = ["ProcessWorker", "WorkerOptions"]
