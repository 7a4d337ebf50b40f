"""Pause and resume across real processes: a flow paused in one subprocess is resumed with input by another (CLI or Python), against a server and embedded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sdk_support import eventually

from flowplane.client import get_client

FLOWPLANE = str(Path(sys.executable).with_name("flowplane"))

PAUSING_FLOW = """
    import sys
    from flowplane import flow, get_run_context
    from flowplane.flow_runs import pause_flow_run
    from flowplane.input import RunInput

    class Order(RunInput):
        item: str
        quantity: int

    @flow
    def order_flow() -> str:
        print("RUN", get_run_context().flow_run.id, flush=True)
        order = pause_flow_run(wait_for_input=Order, timeout=TIMEOUT, poll_interval=0.5)
        return f"{order.quantity} x {order.item}"

    print("RESULT", order_flow(), flush=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    return env | extra


def _start_flow(env: dict[str, str], timeout: float = 120) -> tuple[subprocess.Popen[str], str]:
    """The pausing flow in a subprocess, and its run id once it printed it."""
    code = textwrap.dedent(PAUSING_FLOW).replace("TIMEOUT", str(timeout))
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("RUN "):
        proc.kill()
        raise AssertionError(f"flow did not start: {line}{proc.communicate()[1]}")
    return proc, line.split()[1]


def _wait_paused(client: Any, run_id: str) -> None:
    def paused() -> bool:
        state = client.read_flow_run(run_id).state
        return state is not None and state.type.value == "PAUSED"

    assert eventually(paused, 30), "the flow never paused"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLOWPLANE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``flowplane server start`` on a free port, expiring pauses every 0.2 s; stopped by PID."""
    home = tmp_path / "server-home"
    home.mkdir()
    port = free_port()
    env = _environ(
        FLOWPLANE_HOME=str(home), FLOWPLANE_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS="0.2"
    )
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [FLOWPLANE, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_a_flow_paused_in_one_process_is_resumed_with_input_by_the_cli(
    server: str, tmp_path: Path
) -> None:
    env = _environ(FLOWPLANE_API_URL=server, FLOWPLANE_HOME=str(tmp_path / "client-home"))
    proc, run_id = _start_flow(env)
    try:
        with get_client(sync_client=True, api_url=server) as client:
            _wait_paused(client, run_id)

            # Input that does not match the schema: one line with the server's reason.
            bad = _cli("flow-run", "resume", run_id, "--input", '{"item": "tea"}', env=env)
            assert bad.returncode == 1
            assert bad.stderr.strip().splitlines() == [
                f"Error: Flow run {run_id} was not resumed: Reason: 'quantity' is a required property"
            ]
            assert client.read_flow_run(run_id).state.type.value == "PAUSED"

            good = _cli(
                "flow-run", "resume", run_id, "--input", '{"item": "tea", "quantity": 3}', env=env
            )
            assert good.returncode == 0, good.stderr
            assert good.stdout.strip() == f"Flow run {run_id} resumed."

            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert "RESULT 3 x tea" in out
            run = client.read_flow_run(run_id)
            assert run.state.type.value == "COMPLETED"
            states = [s.type.value for s in client.read_flow_run_states(run_id)]
            assert states == ["RUNNING", "PAUSED", "RUNNING", "COMPLETED"]

            # Resuming again: the run is not paused any more.
            again = _cli("flow-run", "resume", run_id, env=env)
            assert again.returncode == 1
            assert (
                again.stderr.strip() == f"Error: Flow run {run_id} is not paused (it is Completed)."
            )
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_embedded_processes_share_the_pause_through_the_database(tmp_path: Path) -> None:
    home = tmp_path / "shared-home"
    env = _environ(FLOWPLANE_HOME=str(home))
    proc, run_id = _start_flow(env)
    try:
        resumer = textwrap.dedent(
            f"""
            import time
            from flowplane import get_client
            from flowplane.flow_runs import resume_flow_run

            with get_client(sync_client=True) as client:
                while client.read_flow_run({run_id!r}).state.type.value != "PAUSED":
                    time.sleep(0.1)
            resume_flow_run({run_id!r}, {{"item": "coffee", "quantity": 2}})
            print("RESUMED", flush=True)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", resumer],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "RESUMED"
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "RESULT 2 x coffee" in out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_the_server_fails_a_paused_run_whose_process_is_gone(server: str, tmp_path: Path) -> None:
    env = _environ(FLOWPLANE_API_URL=server, FLOWPLANE_HOME=str(tmp_path / "client-home"))
    proc, run_id = _start_flow(env, timeout=1)
    with get_client(sync_client=True, api_url=server) as client:
        _wait_paused(client, run_id)
        proc.kill()  # nobody is left to notice the timeout but the server
        proc.communicate()

        def failed() -> Any:
            state = client.read_flow_run(run_id).state
            return state if state.type.value == "FAILED" else None

        state = eventually(failed, 30)
        assert state, "the pause never expired"
        assert state.message == "The flow was paused and never resumed."
        late = _cli("flow-run", "resume", run_id, env=env)
        assert late.returncode == 1
        assert late.stderr.strip() == (
            f"Error: Flow run {run_id} can no longer be resumed: its pause timed out."
        )


def test_the_waiting_process_fails_its_run_when_the_pause_expires(
    server: str, tmp_path: Path
) -> None:
    env = _environ(FLOWPLANE_API_URL=server, FLOWPLANE_HOME=str(tmp_path / "client-home"))
    proc, run_id = _start_flow(env, timeout=1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "FlowPauseTimeout" in err and "paused and never resumed" in err
    with get_client(sync_client=True, api_url=server) as client:
        run = client.read_flow_run(run_id)
        assert run.state.type.value == "FAILED"
    assert json.loads(_cli("flow-run", "inspect", run_id, "-o", "json", env=env).stdout)[
        "state_type"
    ] == ("FAILED")
