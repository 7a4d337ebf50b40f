"""Results in S3: a real S3-compatible server (moto's server mode) on 127.0.0.1, reached through s3fs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A moto S3 server in its own process; its endpoint URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A fresh bucket; the AWS_* environment points every client (and subprocess) at the server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    import s3fs

    name = "results-" + request.node.name.replace("_", "-")[:40].lower().strip("-")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(name)
    return name


def _objects(bucket: str, prefix: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    return sorted(p.rsplit("/", 1)[-1] for p in fs.find(f"{bucket}/{prefix}"))


def test_a_result_store_in_s3(bucket: str) -> None:
    from flowplane.results import ResultStore

    store = ResultStore(result_storage=f"s3://{bucket}/store", serializer="compressed/json")
    store.write({"rows": [1, 2, 3]}, key="report")
    assert _objects(bucket, "store") == ["report"]
    assert store.exists("report") and not store.exists("other")
    assert store.read("report").result == {"rows": [1, 2, 3]}
    assert store.result_storage.keys() == ["report"]
    with pytest.raises(FileNotFoundError):
        store.read("other")
    assert store.delete("report") and not store.delete("report")
    assert not store.exists("report")


SCRIPT = """
    import sys
    from flowplane import flow, task
    from flowplane.cache_policies import INPUTS, TASK_SOURCE

    storage = sys.argv[1]

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=storage)
    def fetch(x):
        print("computing", flush=True)
        return {"x": x, "tripled": 3 * x}

    @flow(result_storage=storage)
    def pipeline(x: int):
        return fetch(x)

    state = pipeline(5, return_state=True)
    print("flow run", state.state_details.flow_run_id, flush=True)
"""


def test_cached_tasks_and_flow_results_in_s3_across_processes(
    bucket: str, flowplane_home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "s3_flow.py"
    script.write_text(textwrap.dedent(SCRIPT))
    url = f"s3://{bucket}/results"

    def run() -> tuple[bool, str]:
        out = subprocess.run(
            [sys.executable, str(script), url],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        flow_run_id = out.stdout.split("flow run ")[1].split()[0]
        return "computing" in out.stdout, flow_run_id

    computed, first = run()
    assert computed
    computed, second = run()
    assert not computed  # a new process found the cache record in S3
    assert len(_objects(bucket, "results")) == 3  # one cache record, two flow results

    from flowplane.client import get_client
    from flowplane.results import list_cache_records
    from flowplane.sdk.states import State

    with get_client(sync_client=True) as client:
        for flow_run_id in (first, second):
            state = client.read_flow_run(flow_run_id).state
            assert state.data["storage"] == url
            assert State.from_wire(state).result() == {"x": 5, "tripled": 15}
    records = list_cache_records(storage=url)
    assert [r.task_name for r in records] == ["fetch"]
