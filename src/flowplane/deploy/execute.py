"""Execute an existing flow run by id: what ``flowplane flow-run execute ID`` and workers' processes do.

The run was created elsewhere (by the scheduler, ``run_deployment``, the UI). This
process reads it, prepares the code its deployment points at (pull steps, or the
deployment's ``path``), loads the flow from the deployment's entrypoint, and runs it
as that run: Running is proposed for the existing run (a run that is cancelled or
already running elsewhere is left alone), its stored parameters are the arguments,
and its final state is reported like any flow run's. When the flow cannot even be
loaded, the run is marked Crashed with the reason, so it never hangs in Pending.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flowplane.exceptions import EntrypointError, StepError

if TYPE_CHECKING:
    from flowplane.sdk.flows import Flow
    from flowplane.sdk.states import State


def prepare_flow(client: Any, flow_run: Any, entrypoint: str | None = None) -> Flow[Any, Any]:
    """The flow ``flow_run`` runs: from ``entrypoint`` if given, else from its deployment.

    Raises:
        EntrypointError: no entrypoint is known, or the flow cannot be loaded from it.
        StepError: a pull step of the deployment failed.
    """
    from flowplane.deploy.steps import run_steps
    from flowplane.sdk.entrypoints import load_flow_from_entrypoint

    if entrypoint is None:
        if flow_run.deployment_id is None:
            raise EntrypointError(
                f"Flow run {flow_run.id} belongs to no deployment; say which flow runs it "
                "with --entrypoint path/to/file.py:flow_name"
            )
        deployment = client.read_deployment(flow_run.deployment_id)
        if not deployment.entrypoint:
            raise EntrypointError(f"Deployment {deployment.name!r} has no entrypoint")
        pull_steps = getattr(deployment, "pull_steps", None)
        if pull_steps:
            directory = run_steps(pull_steps).get("directory")
        else:
            directory = getattr(deployment, "path", None)
        if directory:
            if not os.path.isdir(directory):
                raise EntrypointError(
                    f"Deployment {deployment.name!r}: its folder {directory} does not exist here"
                )
            os.chdir(directory)
        entrypoint = deployment.entrypoint
    assert entrypoint is not None
    return load_flow_from_entrypoint(entrypoint)


def execute_flow_run(flow_run_id: UUID | str, entrypoint: str | None = None) -> State[Any]:
    """Run the existing flow run ``flow_run_id`` in this process; its final state.

    Raises:
        ObjectNotFound: no flow run has that id.
        EntrypointError, StepError: its flow could not be prepared (the run is then Crashed).
        RunNotStarted: the API did not let the run start; nothing ran.
    """
    from flowplane.client import get_client
    from flowplane.sdk._flow_engine import run_existing_flow_run

    run_id = UUID(str(flow_run_id))
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run_id)
        try:
            flow = prepare_flow(client, flow_run, entrypoint)
        except (EntrypointError, StepError) as exc:
            if entrypoint is None and flow_run.deployment_id is None:
                raise  # nothing was launched for this run: a mistake in how it was called
            client.set_flow_run_state(
                run_id,
                {
                    "type": "CRASHED",
                    "name": "Crashed",
                    "message": f"Could not load the flow: {exc}",
                },
                force=True,
            )
            raise
    _wait_for_start(flow_run)
    return run_existing_flow_run(flow, run_id)


#: A process started longer than this before its run's time does not wait here (the
#: API's own WAIT answers take over, at whole-second precision).
MAX_EARLY_WAIT_SECONDS = 60.0


def _wait_for_start(flow_run: Any) -> None:
    """Sleep until the run's scheduled time when this process was started a little early.

    A worker launches a prefetched run's process ahead of its time so that imports and
    loading the flow are done when the time comes; the run then starts on the dot
    rather than at the API's whole-second WAIT granularity.
    """
    import datetime as dt
    import time

    state = getattr(flow_run, "state", None)
    details = getattr(state, "state_details", None)
    scheduled = getattr(details, "scheduled_time", None) or getattr(
        flow_run, "next_scheduled_start_time", None
    )
    if scheduled is None:
        return
    if scheduled.tzinfo is None:
        scheduled = scheduled.replace(tzinfo=dt.timezone.utc)
    delay = (scheduled - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if 0 < delay <= MAX_EARLY_WAIT_SECONDS:
        time.sleep(delay)


__all__ = ["execute_flow_run", "prepare_flow"]
