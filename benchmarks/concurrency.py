"""Concurrency limits side by side with Prefect 3.6.29: acquire+release of a global slot, and N tasks under a tag limit.

Each workload runs in a fresh interpreter (``benchmarks/workloads/concurrency_worker.py``)
with a private home, in two modes: ``embedded`` (no API URL: flowplane's in-process API;
Prefect's ephemeral server) and ``server`` (a local server of each kind on a temp SQLite
file). Rows:

- acquire+release of a global concurrency slot (``with concurrency(name): pass``), ms each
- N tasks tagged with a tag whose limit is 10, mapped on the default thread pool, s total
  (and the most bodies seen running at once, which must not pass 10)
- sequential untagged tasks (the hot path), µs each: tag-limit enforcement must add nothing

    .venv/bin/python benchmarks/concurrency.py [--quick] [--skip-prefect] [--modes embedded,server]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report, run_as_script  # noqa: E402
from sdk_overhead import python_of, spawn, worker_env  # noqa: E402
from servers import ServerUnavailable, flowplane_server, prefect_server  # noqa: E402

WORKER = Path(__file__).resolve().parent / "workloads" / "concurrency_worker.py"
SIZES = {"acquire": 200, "tagged": 1000, "seq": 1000}
QUICK = {"acquire": 30, "tagged": 100, "seq": 200}
#: Row label, unit, and how a result becomes the row's figure.
ROWS = {
    "acquire": ("acquire+release a global slot", "ms each", lambda r: r["seconds"] / r["n"] * 1e3),
    "tagged": ("{n} tasks under a tag limit of 10", "s total", lambda r: r["seconds"]),
    "seq": ("sequential untagged task", "µs each", lambda r: r["seconds"] / r["n"] * 1e6),
}


def run_one(
    impl: str, workload: str, n: int, api_url: str | None, workdir: Path, timeout: float
) -> dict[str, Any]:
    out = workdir / f"result-{uuid.uuid4().hex[:8]}.json"
    home = workdir / f"{impl}-{workload}-{uuid.uuid4().hex[:6]}"
    command = [str(python_of(impl)), str(WORKER), "--impl", impl, "--workload", workload]
    command += ["--n", str(n), "--out", str(out)]
    finished = spawn(command, worker_env(impl, home, api_url), workdir, timeout)
    if finished.returncode != 0 or not out.exists():
        raise RuntimeError(f"exit {finished.returncode}: {finished.output[-1500:]}")
    return json.loads(out.read_text())


def run(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--modes", default="embedded,server")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per workload")
    parser.add_argument("--check", action="store_true", help="(no budgets of its own)")
    args, _ = parser.parse_known_args(argv)
    sizes = QUICK if args.quick else SIZES
    impls = ["flowplane"] if args.skip_prefect else ["flowplane", "prefect"]
    report = Report(
        title="Concurrency limits: flowplane vs Prefect 3.6.29",
        columns=["what", "mode", "unit", "flowplane", "prefect", "ratio (prefect/flowplane)"],
    )
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        workdir = Path(tmp)
        for mode in args.modes.split(","):
            figures: dict[str, dict[str, str]] = {w: {} for w in sizes}
            values: dict[str, dict[str, float]] = {w: {} for w in sizes}
            timed_out: dict[str, float] = {}
            for impl in impls:
                try:
                    server = None
                    if mode == "server":
                        server = (flowplane_server if impl == "flowplane" else prefect_server)(
                            workdir / f"{impl}-server"
                        )
                        running = server.__enter__()
                        api_url: str | None = running.api_url
                    else:
                        api_url = None
                except ServerUnavailable as exc:
                    for w in sizes:
                        figures[w][impl] = f"n/a ({exc})"
                    continue
                try:
                    for workload, n in sizes.items():
                        print(f"  {impl} {mode}: {workload} n={n}", file=sys.stderr, flush=True)
                        try:
                            result = run_one(impl, workload, n, api_url, workdir, args.timeout)
                        except RuntimeError as exc:
                            if "exit -999" in str(exc):  # stopped at the timeout
                                figures[workload][impl] = f"> {args.timeout:.0f} (timed out)"
                                if workload == "tagged":
                                    timed_out[impl] = args.timeout
                            else:
                                figures[workload][impl] = "failed"
                            last = str(exc).strip().splitlines()[-1:] or [""]
                            report.notes.append(f"{impl} {mode} {workload}: {last[0][:300]}")
                            continue
                        value = ROWS[workload][2](result)
                        values[workload][impl] = value
                        text = f"{value:.3g}" if value < 100 else f"{value:.0f}"
                        if workload == "tagged":
                            text += f" (max {result['most_at_once']} at once)"
                            if not result.get("ok") or result["most_at_once"] > 10:
                                text += " WRONG"
                        if workload == "acquire" and result.get("left_active"):
                            text += f" ({result['left_active']} slots leaked)"
                        figures[workload][impl] = text
                finally:
                    if server is not None:
                        server.__exit__(None, None, None)
            for workload, n in sizes.items():
                label, unit, _ = ROWS[workload]
                ours, theirs = values[workload].get("flowplane"), values[workload].get("prefect")
                ratio = f"{theirs / ours:.1f}x" if ours and theirs else ""
                if workload == "tagged" and ours and "prefect" in timed_out:
                    ratio = f"> {timed_out['prefect'] / ours:.0f}x"
                report.rows.append(
                    [
                        label.format(n=n),
                        mode,
                        unit,
                        figures[workload].get("flowplane", ""),
                        figures[workload].get("prefect", "skipped"),
                        ratio,
                    ]
                )
    report.notes.append("ratio > 1: flowplane is faster by that factor")
    return report


if __name__ == "__main__":
    sys.exit(run_as_script(run))
