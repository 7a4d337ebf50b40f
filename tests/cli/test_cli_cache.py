"""``flowplane cache ls`` and ``flowplane cache clear`` as subprocesses over records that real task runs wrote."""

from __future__ import annotations

import os
from pathlib import Path

from cli_harness import ok, ok_json, one_line_error


def _run_cached_tasks() -> None:
    from flowplane import flow, task
    from flowplane.cache_policies import INPUTS, TASK_SOURCE

    # INPUTS alone would let beta(1) hit alpha(1)'s record: keys are shared across tasks.
    @task(cache_policy=INPUTS + TASK_SOURCE)
    def alpha(x: int) -> int:
        return x

    @task(cache_policy=INPUTS + TASK_SOURCE)
    def beta(x: int) -> int:
        return -x

    @flow(persist_result=True)
    def pipeline() -> int:
        return alpha(1) + alpha(2) + beta(1)

    assert pipeline() == 2


def test_cache_ls_and_clear(flowplane_home: Path) -> None:
    assert "No cache records found." in ok("cache", "ls")
    _run_cached_tasks()
    storage = flowplane_home / "storage"
    files_before = set(os.listdir(storage))
    assert len(files_before) == 4  # three cache records and the flow's result

    rows = ok_json("cache", "ls")
    assert sorted(r["task"] for r in rows) == ["alpha", "alpha", "beta"]
    assert all(r["expiration"] is None and not r["expired"] for r in rows)
    assert {r["storage"] for r in rows} == {str(storage.resolve())}
    table = ok("cache", "ls", "--task", "beta")
    assert "beta" in table and "alpha" not in table and "never" in table

    beta_key = next(r["key"] for r in rows if r["task"] == "beta")
    assert one_line_error("cache", "clear", "--key", "nope") == (
        f"Error: No cache record with key 'nope' in {storage.resolve()}."
    )
    assert "belongs to task 'beta'" in one_line_error(
        "cache", "clear", "--key", beta_key, "--task", "alpha"
    )
    assert set(os.listdir(storage)) == files_before  # refused: nothing deleted
    assert one_line_error("cache", "ls", "-o", "yaml").startswith("Error: Unknown output format")

    assert ok("cache", "clear", "--key", beta_key).strip() == "Deleted 1 cache record(s)."
    assert [r["task"] for r in ok_json("cache", "ls")] == ["alpha", "alpha"]
    assert ok("cache", "clear", "--task", "alpha").strip() == "Deleted 2 cache record(s)."
    assert ok_json("cache", "ls") == []
    assert len(os.listdir(storage)) == 1  # the flow's result is not a cache record

    # Another storage, by flag.
    other = flowplane_home / "elsewhere"
    assert "No cache records found." in ok("cache", "ls", "--storage", str(other))
    assert ok("cache", "clear", "--storage", str(other)).strip() == "Deleted 0 cache record(s)."


SCRIPT = """
import sys
from pathlib import Path
from flowplane import flow, task
from flowplane.cache_policies import INPUTS

@task(cache_policy=INPUTS)
def compute(x):
    with Path(sys.argv[1]).open("a") as f:
        f.write("ran\\n")
    return x

@flow
def pipeline():
    return compute(5)

pipeline()
"""


def test_a_cleared_cache_makes_the_task_run_again(flowplane_home: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    script = tmp_path / "cached.py"
    script.write_text(SCRIPT)
    marker = tmp_path / "marker"

    def run() -> None:
        done = subprocess.run(
            [sys.executable, str(script), str(marker)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr

    run()
    run()
    assert marker.read_text() == "ran\n"
    assert ok("cache", "clear", "--task", "compute").strip() == "Deleted 1 cache record(s)."
    run()
    assert marker.read_text() == "ran\nran\n"


def test_clearing_in_process_is_seen_at_once(flowplane_home: Path) -> None:
    from flowplane import flow, task
    from flowplane.cache_policies import INPUTS
    from flowplane.results import clear_cache

    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def compute(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def pipeline() -> int:
        return compute(5)

    pipeline()
    pipeline()
    assert calls == [5]
    assert len(clear_cache(task="compute")) == 1
    pipeline()
    assert calls == [5, 5]
