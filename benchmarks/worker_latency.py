"""Schedule-to-start latency with the process worker, flowplane beside Prefect 3.6.29.

For each implementation: start its server (temp SQLite) and its process worker with
default settings (``flowplane worker start --pool P``; ``prefect worker start --pool P
--type process``), create a process work pool with its CLI and a deployment whose flow
writes ``time.time()`` at its first line, then create N runs scheduled a little ahead
(spread over a few seconds, all created before the workers' prefetch window reaches
them). Latency = the flow code's first line - the run's scheduled time; p50/p95/max.

    .venv/bin/python benchmarks/worker_latency.py [--runs 20] [--skip-prefect]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report, run_as_script  # noqa: E402
from servers import (  # noqa: E402
    _base_environ,
    flowplane_executable,
    flowplane_server,
    prefect_executable,
    prefect_server,
)

FLOW = """
import time

from {package} import flow


@flow(name="latency")
def latency(out: str, tag: str) -> None:
    started = time.time()
    with open(f"{{out}}/{{tag}}", "w") as f:
        f.write(repr(started))
"""


def _pool_and_deployment(impl: str, api: str, env: dict[str, str], project: Path) -> str:
    cli = flowplane_executable() if impl == "flowplane" else prefect_executable()
    created = subprocess.run(
        [str(cli), "work-pool", "create", "bench", "--type", "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if created.returncode != 0:
        raise RuntimeError(f"{impl} work-pool create failed: {created.stdout}{created.stderr}")
    with httpx.Client(base_url=api, timeout=30) as http:
        flow = http.post("/flows/", json={"name": "latency"}).json()
        body = {
            "flow_id": flow["id"],
            "name": "bench",
            "work_pool_name": "bench",
            "entrypoint": "latency_flow.py:latency",
            "pull_steps": [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(project)}}
            ],
        }
        response = http.post("/deployments/", json=body)
        response.raise_for_status()
        return str(response.json()["id"])


def _worker(impl: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if impl == "flowplane":
        command = [str(flowplane_executable()), "worker", "start", "--pool", "bench"]
    else:
        command = [str(prefect_executable()), "worker", "start", "--pool", "bench"]
        command += ["--type", "process"]
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Prefect's CLI forks: stop the whole group we started
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def measure(impl: str, workdir: Path, runs: int, lead: float, spread: float) -> list[float]:
    """Latencies (s) of ``runs`` runs scheduled ``lead``..``lead+spread`` s after creation."""
    project = workdir / f"{impl}-project"
    out = workdir / f"{impl}-out"
    project.mkdir()
    out.mkdir()
    package = "flowplane" if impl == "flowplane" else "prefect"
    (project / "latency_flow.py").write_text(textwrap.dedent(FLOW.format(package=package)))
    server_cm = flowplane_server(workdir) if impl == "flowplane" else prefect_server(workdir)
    with server_cm as server:
        env = _base_environ() | {"DO_NOT_TRACK": "1"}
        if impl == "flowplane":
            env |= {"FLOWPLANE_API_URL": server.api_url}
            env |= {"FLOWPLANE_HOME": str(workdir / "flowplane-worker-home")}
        else:
            env |= {"PREFECT_API_URL": server.api_url, "PREFECT_HOME": str(workdir / "pw-home")}
        deployment = _pool_and_deployment(impl, server.api_url, env, project)
        worker = _worker(impl, env, workdir / f"{impl}-worker.log")
        try:
            time.sleep(3)  # let the worker start and poll once
            scheduled: dict[str, float] = {}
            with httpx.Client(base_url=server.api_url, timeout=30) as http:
                base = time.time() + lead
                for i in range(runs):
                    when = base + spread * i / max(runs - 1, 1)
                    iso = dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat()
                    body = {
                        "parameters": {"out": str(out), "tag": str(i)},
                        "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": iso}},
                    }
                    path = f"/deployments/{deployment}/create_flow_run"
                    for _attempt in range(10):  # a busy SQLite server may answer 503
                        response = http.post(path, json=body)
                        if response.status_code < 500:
                            break
                        time.sleep(0.5)
                    response.raise_for_status()
                    scheduled[str(i)] = when
            deadline = time.monotonic() + lead + spread + 180
            while len(list(out.iterdir())) < runs:
                if time.monotonic() > deadline:
                    log = (workdir / f"{impl}-worker.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(
                        f"{impl}: only {len(list(out.iterdir()))} runs started\n{log}"
                    )
                time.sleep(0.5)
            time.sleep(2)  # let the last processes finish before the worker stops
        finally:
            _stop(worker)
    return [float((out / tag).read_text()) - when for tag, when in scheduled.items()]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(round(q * (len(ordered) - 1))), len(ordered) - 1)]


def run(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 runs")
    parser.add_argument(
        "--gap", type=float, default=2.0, help="seconds between the runs' scheduled times"
    )
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--skip-flowplane", action="store_true")
    parser.add_argument("--keep", help="keep the logs and files in this new folder")
    parser.add_argument("--check", action="store_true", help="(no budgets yet; accepted)")
    args, _unknown = parser.parse_known_args(argv)
    runs = 5 if args.quick else args.runs
    lead, spread = 20.0, args.gap * (runs - 1)
    impls = [
        impl
        for impl, skip in (("flowplane", args.skip_flowplane), ("prefect", args.skip_prefect))
        if not skip
    ]
    results: dict[str, list[float]] = {}
    notes = [
        f"{runs} runs scheduled {args.gap:g} s apart, {lead:.0f}-{lead + spread:.0f} s after "
        "creation; default worker "
        "settings (flowplane: poll 2 s, prefetch 10 s; prefect: poll 10 s, prefetch 10 s)",
        "latency = the flow function's first line minus the run's scheduled time",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-worker-latency-") as tmp:
        if args.keep:
            tmp = args.keep
            Path(tmp).mkdir(parents=True)
        for impl in impls:
            print(
                f"  {impl}: {runs} deployment runs through the process worker ...",
                file=sys.stderr,
                flush=True,
            )
            workdir = Path(tmp) / impl
            workdir.mkdir()
            try:
                results[impl] = measure(impl, workdir, runs, lead, spread)
            except Exception as exc:  # report what could be measured
                notes.append(f"{impl} not measured: {exc}")
    report = Report(
        title="Schedule-to-start latency, process worker (seconds, lower is better)",
        columns=["statistic", "flowplane", "prefect 3.6.29"],
        notes=notes,
    )
    for label, stat in (
        ("p50", lambda v: statistics.median(v)),
        ("p95", lambda v: _pct(v, 0.95)),
        ("max", max),
        ("min", min),
    ):
        cells = [label]
        for impl in ("flowplane", "prefect"):
            values = results.get(impl)
            cells.append(f"{stat(values):.3f}" if values else "-")
        report.rows.append(cells)
    return report


if __name__ == "__main__":
    sys.exit(run_as_script(run))
