"""``flow.serve()`` in a real subprocess against a real server: runs triggered runs, cancels, stops cleanly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from deploy_harness import FLOWPLANE, LiveServer, alive, eventually, spawn, stop_group

pytestmark = pytest.mark.slow

FLOW = textwrap.dedent(
    """
    import os
    import sys
    import time

    from flowplane import flow


    @flow(log_prints=True)
    def greet(name: str = "world", seconds: float = 0, pid_file: str = ""):
        if pid_file:
            with open(pid_file, "w") as f:
                f.write(str(os.getpid()))
        time.sleep(seconds)
        print(f"hello {name}")
        return name


    if __name__ == "__main__":
        greet.serve(name="served", parameters={"name": "default"}, tags=["served"], limit=2)
    """
)


@pytest.fixture(scope="module")
def served(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("served-project")
    (folder / "greet_flow.py").write_text(FLOW)
    log = folder / "serve.log"
    env = live_server.env(FLOWPLANE_RUNNER_POLL_SECONDS="0.5")
    process = spawn([sys.executable, "greet_flow.py"], folder, env, log)

    def registered() -> dict:
        assert process.poll() is None, log.read_text()
        deployments = live_server.post("/deployments/filter", {})
        named = [d for d in deployments if d["name"] == "served"]
        assert named, deployments
        return named[0]

    deployment = eventually(registered, timeout=60)
    yield {"process": process, "log": log, "deployment": deployment, "folder": folder}
    if process.poll() is None:
        stop_group(process)


def run_state(server: LiveServer, run_id: str) -> dict:
    return server.get(f"/flow_runs/{run_id}")


def test_serve_registers_a_deployment_without_a_work_pool(served: dict) -> None:
    deployment = served["deployment"]
    assert deployment["work_pool_name"] is None
    assert deployment["entrypoint"] == "greet_flow.py:greet"
    assert deployment["path"] == str(served["folder"])
    assert deployment["parameters"] == {"name": "default"}
    assert deployment["tags"] == ["served"]


def test_run_deployment_is_executed_by_the_serve_process(
    served: dict, live_server: LiveServer
) -> None:
    from flowplane.client import Client
    from flowplane.deployments import run_deployment

    with Client(api_url=live_server.url) as client:
        flow_run = run_deployment(
            "greet/served", client=client, parameters={"name": "py"}, timeout=90, poll_interval=0.2
        )
    assert flow_run.state.type.value == "COMPLETED", served["log"].read_text()[-3000:]
    assert flow_run.parameters == {"name": "py"}

    # The serving process reports the final state, then flushes the run's last log lines
    # (as a flow run does): they arrive just after the run is seen Completed.
    def logged_hello() -> None:
        body = {"logs": {"flow_run_id": {"any_": [str(flow_run.id)]}}}
        messages = [line["message"] for line in live_server.post("/logs/filter", body)]
        assert "hello py" in messages, messages

    eventually(logged_hello, timeout=30)


def test_cli_deployment_run_watch_follows_a_served_run(
    served: dict, live_server: LiveServer
) -> None:
    done = subprocess.run(
        [FLOWPLANE, "deployment", "run", "greet/served", "--param", "name=cli", "--watch"],
        env=live_server.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr + served["log"].read_text()[-3000:]
    assert "State: Completed" in done.stdout
    assert "hello cli" in done.stdout


def test_cancelling_a_served_run_kills_its_process(
    served: dict, live_server: LiveServer, tmp_path: Path
) -> None:
    from flowplane.client import Client
    from flowplane.deployments import run_deployment

    pid_file = tmp_path / "pid"
    with Client(api_url=live_server.url) as client:
        flow_run = run_deployment(
            "greet/served",
            client=client,
            parameters={"seconds": 120, "pid_file": str(pid_file)},
            timeout=0,
        )
    run_id = str(flow_run.id)

    def running() -> int:
        assert run_state(live_server, run_id)["state"]["type"] == "RUNNING"
        assert pid_file.exists() and pid_file.read_text()
        return int(pid_file.read_text())

    pid = eventually(running, timeout=90)
    live_server.post(
        f"/flow_runs/{run_id}/set_state",
        {"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True},
    )

    def cancelled() -> None:
        assert run_state(live_server, run_id)["state"]["type"] == "CANCELLED"

    eventually(cancelled, timeout=60)
    eventually(lambda: _gone(pid), timeout=30)


def _gone(pid: int) -> None:
    assert not alive(pid)


def test_sigterm_stops_serving_and_pauses_the_deployment(
    served: dict, live_server: LiveServer
) -> None:
    code = stop_group(served["process"])
    assert code == 0, served["log"].read_text()[-3000:]
    deployment = live_server.get(f"/deployments/{served['deployment']['id']}")
    assert deployment["paused"] is True
    assert "Traceback" not in served["log"].read_text()


MANY = textwrap.dedent(
    """
    import os
    import time

    from flowplane import flow, serve


    @flow
    def crasher():
        os._exit(3)


    @flow
    def sleeper(seconds: float = 1.0):
        time.sleep(seconds)
        return seconds


    if __name__ == "__main__":
        serve(
            crasher.to_deployment("crash"),
            sleeper.to_deployment("nap", interval=3600, paused=True),
            limit=1,
            pause_on_shutdown=False,
        )
    """
)


def test_serve_many_with_a_limit_and_a_crashing_run(
    live_server: LiveServer, tmp_path: Path
) -> None:
    from flowplane.client import Client
    from flowplane.deployments import run_deployment

    (tmp_path / "many_flows.py").write_text(MANY)
    log = tmp_path / "serve.log"
    process = spawn(
        [sys.executable, "many_flows.py"],
        tmp_path,
        live_server.env(FLOWPLANE_RUNNER_POLL_SECONDS="0.5"),
        log,
    )
    try:

        def registered() -> None:
            assert process.poll() is None, log.read_text()
            names = {d["name"] for d in live_server.post("/deployments/filter", {})}
            assert {"crash", "nap"} <= names

        eventually(registered, timeout=60)
        with Client(api_url=live_server.url) as client:
            crashed = run_deployment("crasher/crash", client=client, timeout=90, poll_interval=0.2)
            assert crashed.state.type.value == "CRASHED", log.read_text()[-3000:]
            assert "exited with status 3" in (crashed.state.message or "")

            first = run_deployment(
                "sleeper/nap", client=client, timeout=0, parameters={"seconds": 2}
            )
            second = run_deployment(
                "sleeper/nap", client=client, timeout=0, parameters={"seconds": 2}
            )

            def both_completed() -> list:
                runs = [client.read_flow_run(r.id) for r in (first, second)]
                assert all(r.state.type.value == "COMPLETED" for r in runs), [
                    r.state.type for r in runs
                ]
                return runs

            runs = eventually(both_completed, timeout=120)
        # limit=1: the two runs did not overlap.
        a, b = sorted(runs, key=lambda r: r.start_time)
        assert a.end_time <= b.start_time, (a.start_time, a.end_time, b.start_time)
        deployment = live_server.get("/deployments/name/sleeper/nap")
        assert deployment["paused"] is True  # paused=True was asked for; runs still work
    finally:
        assert stop_group(process) == 0, log.read_text()[-3000:]
    # pause_on_shutdown=False leaves the other deployment as it was.
    assert live_server.get("/deployments/name/crasher/crash")["paused"] is False


SCHEDULED = textwrap.dedent(
    """
    import time

    from flowplane import flow


    @flow
    def tick(marks: str) -> None:
        with open(marks, "a") as f:
            f.write(f"{time.time()}\\n")


    if __name__ == "__main__":
        import sys

        tick.serve(name="ticking", interval=2, parameters={"marks": sys.argv[1]})
    """
)


def test_embedded_serve_runs_its_schedule_without_a_server(tmp_path: Path) -> None:
    # No API URL: the in-process API runs no scheduler service, so the serving process
    # must create its own deployment's scheduled runs.
    from deploy_harness import clean_env

    (tmp_path / "ticking_flow.py").write_text(SCHEDULED)
    marks = tmp_path / "marks.txt"
    home = tmp_path / "serve-home"
    home.mkdir()
    env = clean_env(FLOWPLANE_HOME=str(home), FLOWPLANE_RUNNER_POLL_SECONDS="0.5")
    log = tmp_path / "serve.log"
    process = spawn([sys.executable, "ticking_flow.py", str(marks)], tmp_path, env, log)

    def two_runs() -> None:
        assert process.poll() is None, log.read_text()
        assert marks.exists() and len(marks.read_text().splitlines()) >= 2

    try:
        eventually(two_runs, timeout=90)
    finally:
        stop_group(process)
    assert "Traceback" not in log.read_text()
