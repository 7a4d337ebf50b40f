"""Whole processes: Crashed on SIGTERM and Ctrl-C, many processes on one SQLite file, import cost, the test harness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sdk_support import eventually

from flowplane.client import get_client


def python(code: str, home: Path, **popen: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    env["FLOWPLANE_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"never saw {text!r}; stderr: {proc.stderr.read() if proc.stderr else ''}")


CRASHY = """
    import time
    from flowplane import flow, task, get_run_logger

    @task
    def step():
        return 1

    @flow(on_crashed=[lambda f, r, s: print("crash hook", s.name, flush=True)])
    def long_flow():
        step()
        get_run_logger().info("about to wait")
        print("READY", flush=True)
        time.sleep(60)

    long_flow()
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_marks_the_run_crashed_before_the_process_exits(
    flowplane_home: Path, sig: int
) -> None:
    proc = python(CRASHY, flowplane_home)
    try:
        wait_for_line(proc, "READY")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "crash hook Crashed" in out
    if sig == signal.SIGTERM:
        assert proc.returncode == -signal.SIGTERM  # the process still ends by the signal
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs()
        assert run.state_name == "Crashed"
        messages = [
            line.message for line in client.read_logs({"flow_run_id": {"any_": [str(run.id)]}})
        ]
        assert "about to wait" in messages  # logs queued before the crash were flushed
        task_runs = eventually(lambda: client.read_task_runs())
        assert [t.state_name for t in task_runs] == ["Completed"]


def test_eight_processes_run_flows_on_one_sqlite_file(flowplane_home: Path) -> None:
    code = """
        import sys
        from flowplane import flow, task

        @task
        def work(i):
            return i * 2

        @flow
        def many(n: int):
            return sum(work(i) for i in range(n))

        for _ in range(5):
            assert many(20) == 380
        print("OK")
    """
    procs = [python(code, flowplane_home) for _ in range(8)]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "OK" in out
        assert "database is locked" not in err
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        assert len(runs) == 40
        assert {r.state_name for r in runs} == {"Completed"}
        total = eventually(lambda: (n := client.count_task_runs()) >= 800 and n, timeout=30)
        assert total == 800


def test_importing_flowplane_stays_light(tmp_path: Path) -> None:
    code = """
        import sys, time
        started = time.perf_counter()
        import flowplane
        from flowplane import flow, task, get_run_logger
        elapsed = time.perf_counter() - started
        heavy = [m for m in ("fastapi", "sqlalchemy", "typer", "flowplane.server", "httpx") if m in sys.modules]
        print(heavy, elapsed)
    """
    proc = python(code, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    heavy, _elapsed = out.rsplit("]", 1)
    assert heavy == "[", out  # none of the heavy modules (the time is benchmarks/' business)


def test_harness_gives_each_block_its_own_database() -> None:
    from flowplane import flow
    from flowplane.testing import flowplane_test_harness

    @flow
    def f() -> int:
        return 1

    homes = []
    for _ in range(2):
        with flowplane_test_harness() as home:
            homes.append(home)
            assert f() == 1
            with get_client(sync_client=True) as client:
                assert client.count_flow_runs() == 1
        assert not home.exists()
    assert homes[0] != homes[1]
    assert os.environ["FLOWPLANE_HOME"] not in {str(h) for h in homes}


def test_flows_run_against_a_server_when_an_api_url_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent / "client"))
    try:
        from client_harness import ServerProcess
    finally:
        sys.path.pop(0)
    from flowplane import flow, get_run_logger, task

    (tmp_path / "server-home").mkdir()
    server = ServerProcess(tmp_path / "server-home")
    try:
        monkeypatch.setenv("FLOWPLANE_API_URL", server.api_url)

        @task
        def double(x: int) -> int:
            return x * 2

        @flow
        def remote(n: int) -> int:
            get_run_logger().info("over http")
            return sum(double.map(range(n)).result())

        state = remote(4, return_state=True)
        assert state.result() == 12
        with get_client(sync_client=True) as client:
            assert not client.embedded
            run = client.read_flow_run(state.state_details.flow_run_id)
            assert run.state_name == "Completed"
            logs = client.read_logs({"flow_run_id": {"any_": [str(run.id)]}})
            assert "over http" in [line.message for line in logs]
            task_runs = eventually(lambda: len(client.read_task_runs()) == 4)
            assert task_runs
    finally:
        from flowplane.sdk.writer import close_all_writers

        close_all_writers()
        server.stop()
    assert not (tmp_path / "home" / "flowplane.db").exists()  # nothing ran embedded
