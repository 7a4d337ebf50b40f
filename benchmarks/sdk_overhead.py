"""SDK overhead: the same flows and tasks with flowplane and with Prefect 3.6.29, each workload in a fresh process.

Workloads (``benchmarks/workloads/worker.py`` runs each one in a new interpreter with a
private temp home, so nothing is warmed by an earlier workload):

- ``seq``: one flow calling a trivial task N times in sequence (µs per task)
- ``map``: ``task.map`` over N items with the default thread pool, then ``.result()`` (µs per item)
- ``flows``: N tiny flow runs, one after another (ms per flow run)
- ``subflows``: one flow calling N subflows of 5 tasks each (ms per subflow)
- ``first``: a fresh process that imports the SDK, runs one flow with one task and exits
  (wall clock from process start to exit, measured by the parent)
- ``import X`` / ``from X import flow, task`` and ``X --help`` (no mode)
- peak RSS of the ``seq`` workload's process (and with its child processes)

Each runs in two modes: ``embedded`` (no API URL: flowplane's in-process API on
``$FLOWPLANE_HOME/flowplane.db``; Prefect's ephemeral server subprocess on
``$PREFECT_HOME/prefect.db``) and ``server`` (a local server of each kind on a temp SQLite
file, started once for the mode). Every flowplane workload is checked through the API
afterwards: all its task runs and flow runs must be counted COMPLETED, else the row fails.

    .venv/bin/python benchmarks/sdk_overhead.py [--quick] [--skip-prefect] [--modes embedded,server] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report, run_as_script  # noqa: E402
from servers import (  # noqa: E402
    COMPAT_VENV,
    PREFECT_SETTINGS,
    REPO,
    ServerUnavailable,
    flowplane_server,
    prefect_server,
)

WORKER = Path(__file__).resolve().parent / "workloads" / "worker.py"
IMPLS = ("flowplane", "prefect")
MODES = ("embedded", "server")

#: Full and --quick sizes of the per-item workloads.
SIZES = {"seq": 1000, "map": 10_000, "flows": 200, "subflows": 100}
QUICK_SIZES = {"seq": 200, "map": 1000, "flows": 20, "subflows": 10}

#: (workload, mode or None for any mode) -> (budget, unit); DESIGN.md section 6.
BUDGETS: dict[tuple[str, str | None], float] = {
    ("seq", "embedded"): 50.0,  # µs per task
    ("map", "embedded"): 150.0,  # µs per item
    ("flows", "embedded"): 5.0,  # ms per flow run
    ("flows", "server"): 15.0,
    ("first-new", "embedded"): 1.0,  # s, process wall
    ("first-existing", "embedded"): 1.0,
    ("from-import", None): 0.25,  # s
    ("help", None): 0.4,  # s
}


@dataclass
class Cell:
    """One implementation's figure for one row."""

    value: float | None = None  # in the row's unit; None when not measured
    text: str = ""  # extra, e.g. "(71/200)"
    recorded: str = ""  # verification summary
    failed: str = ""  # why the measurement failed (runs missing, crash, ...)
    cpu: float | None = None  # CPU time per item (worker + its child processes), row unit


@dataclass
class Row:
    what: str
    mode: str
    unit: str
    key: str  # for BUDGETS
    cells: dict[str, Cell] = field(default_factory=dict)


# --- processes ----------------------------------------------------------------------------


def python_of(impl: str) -> Path:
    """The interpreter for ``impl``: .venv for flowplane, .venv-compat for Prefect."""
    venv = REPO / ".venv" if impl == "flowplane" else COMPAT_VENV
    path = venv / "bin" / "python"
    if impl == "flowplane" and not path.exists():
        path = Path(sys.executable)
    if not path.exists():
        raise ServerUnavailable(f"{path} missing: run ./scripts/setup-compat.sh")
    return path


def cli_of(impl: str) -> Path:
    venv = REPO / ".venv" if impl == "flowplane" else COMPAT_VENV
    return venv / "bin" / impl


def worker_env(impl: str, home: Path, api_url: str | None) -> dict[str, str]:
    """This environment minus FLOWPLANE_*/PREFECT_*, plus a private home and (server mode) the API URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWPLANE_", "PREFECT_"))}
    home.mkdir(parents=True, exist_ok=True)
    if impl == "flowplane":
        env["FLOWPLANE_HOME"] = str(home)
        if api_url:
            env["FLOWPLANE_API_URL"] = api_url
    else:
        env |= PREFECT_SETTINGS
        env["PREFECT_HOME"] = str(home)
        # a loaded 2-core machine can take longer than the default 20 s to start the ephemeral server
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
        if api_url:
            env["PREFECT_API_URL"] = api_url
    return env


@dataclass
class Finished:
    returncode: int
    wall: float  # seconds from spawn to exit, measured here
    output: str  # combined stdout/stderr tail


def spawn(command: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Finished:
    """Run ``command`` in its own session; on timeout stop that session's processes (by our child's PID)."""
    log = cwd / f"out-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(process)
            returncode = -999
        wall = time.perf_counter() - started
    text = log.read_text(errors="replace")
    if returncode == -999:
        text += f"\n[timed out after {timeout:.0f} s; stopped]"
    return Finished(returncode, wall, text[-4000:])


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, the process group led by the child we started (it and e.g. Prefect's ephemeral server)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class WorkloadFailed(Exception):
    """A worker crashed, timed out, returned wrong values or left runs unrecorded."""


def run_worker(
    impl: str,
    workload: str,
    *,
    home: Path,
    api_url: str | None,
    workdir: Path,
    n: int = 1,
    name: str,
    max_seconds: float = float("inf"),
    verify_timeout: float = 60.0,
    extra: list[str] | None = None,
) -> tuple[dict[str, Any], Finished]:
    """Run one workload in a fresh ``impl`` interpreter; its JSON result and how the process ended."""
    out = workdir / f"result-{uuid.uuid4().hex[:8]}.json"
    command = [
        str(python_of(impl)),
        str(WORKER),
        "--impl",
        impl,
        "--workload",
        workload,
        "--n",
        str(n),
        "--name",
        name,
        "--out",
        str(out),
        "--verify-timeout",
        str(verify_timeout),
        *(["--max-seconds", str(max_seconds)] if max_seconds != float("inf") else []),
        *(extra or []),
    ]
    limit = (max_seconds if max_seconds != float("inf") else 600) + verify_timeout + 300
    finished = spawn(command, worker_env(impl, home, api_url), workdir, limit)
    result: dict[str, Any] = {}
    if out.exists():
        result = json.loads(out.read_text())
    if finished.returncode == 3 and "verify" in result and impl == "prefect":
        return result, finished  # timed fine; the shortfall is reported, not fatal (not ours)
    if finished.returncode == 3 and "verify" in result:
        v = result["verify"]
        raise WorkloadFailed(
            f"runs missing after {v['seconds']:.0f} s: expected {v['expected']} "
            f"(flow runs, task runs COMPLETED), counted {v['counted']}"
        )
    if finished.returncode != 0 or not result:
        raise WorkloadFailed(
            f"{impl} {workload} exited {finished.returncode}:\n{finished.output[-2500:]}"
        )
    return result, finished


def _recorded(verify: dict[str, Any]) -> str:
    expected = verify["expected"]
    flow_runs = sum(v[0] for v in expected.values())
    task_runs = sum(v[1] for v in expected.values())
    if not verify["ok"]:
        counted = verify["counted"]
        got_fr = sum(min(counted[k][0], w[0]) for k, w in expected.items())
        got_tr = sum(min(counted[k][1], w[1]) for k, w in expected.items())
        return (
            f"MISSING: {got_fr}/{flow_runs} fr + {got_tr}/{task_runs} tr "
            f"after {verify['seconds']:.0f} s"
        )
    return f"{flow_runs} fr + {task_runs} tr in {verify['seconds']:.2f} s"


# --- measurements -------------------------------------------------------------------------


def _median_wall(command: list[str], env: dict[str, str], cwd: Path, repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        finished = spawn(command, env, cwd, 120)
        if finished.returncode != 0 or not finished.output.strip():
            raise WorkloadFailed(
                f"{' '.join(command)} exited {finished.returncode}:\n{finished.output}"
            )
        walls.append(finished.wall)
    return statistics.median(walls)


def _median_import(impl: str, statement: str, env: dict[str, str], cwd: Path, repeat: int) -> float:
    """Median seconds of ``statement`` timed with perf_counter inside fresh interpreters."""
    code = (
        "import time, sys\nt = time.perf_counter()\n"
        f"{statement}\n"
        "print(repr(time.perf_counter() - t))\n"
    )
    values = []
    for _ in range(repeat):
        finished = spawn([str(python_of(impl)), "-c", code], env, cwd, 120)
        if finished.returncode != 0:
            raise WorkloadFailed(f"{statement!r} with {impl} failed:\n{finished.output}")
        values.append(float(finished.output.strip().splitlines()[-1]))
    return statistics.median(values)


def measure_startup(impl: str, workdir: Path, repeat: int) -> dict[str, Cell]:
    """Import and ``--help`` timings, mode-independent."""
    env = worker_env(impl, workdir / f"{impl}-startup-home", None)
    cells: dict[str, Cell] = {}
    for key, statement in (
        ("import", f"import {impl}"),
        ("from-import", f"from {impl} import flow, task"),
    ):
        try:
            cells[key] = Cell(_median_import(impl, statement, env, workdir, repeat))
        except WorkloadFailed as exc:
            cells[key] = Cell(failed=str(exc))
    try:
        cells["help"] = Cell(_median_wall([str(cli_of(impl)), "--help"], env, workdir, repeat))
    except WorkloadFailed as exc:
        cells["help"] = Cell(failed=str(exc))
    return cells


def measure_mode(
    impl: str,
    mode: str,
    api_url: str | None,
    workdir: Path,
    sizes: dict[str, int],
    args: argparse.Namespace,
) -> dict[str, Cell]:
    """Every per-item workload, the memory figures and the first-run wall for one implementation in one mode."""
    cells: dict[str, Cell] = {}
    tag = uuid.uuid4().hex[:6]
    for workload, n in sizes.items():
        print(f"  {impl} {mode}: {workload} n={n} ...", file=sys.stderr, flush=True)
        per_item: list[float] = []
        cpu_per_item: list[float] = []
        repeat = args.repeat if impl == "flowplane" else args.prefect_repeat
        for rep in range(repeat):
            name = f"bench-{workload}-{tag}-{rep}"
            try:
                result, _ = run_worker(
                    impl,
                    workload,
                    home=workdir / f"{impl}-{mode}-{workload}-{rep}",
                    api_url=api_url,
                    workdir=workdir,
                    n=n,
                    name=name,
                    max_seconds=args.max_seconds,
                    verify_timeout=args.verify_timeout,
                )
            except WorkloadFailed as exc:
                cells[workload] = Cell(failed=str(exc))
                print(f"  FAILED {impl} {mode} {workload}: {exc}", file=sys.stderr, flush=True)
                break
            scale = 1e6 if workload in ("seq", "map") else 1e3
            per_item.append(result["seconds"] / result["items"] * scale)
            cpu_per_item.append(result["cpu_seconds"] / result["items"] * scale)
            text = f"({result['items']}/{n}, capped)" if result["capped"] else ""
            if len(per_item) > 1:
                text = f"[{_fmt(min(per_item))}–{_fmt(max(per_item))}] {text}".strip()
            cells[workload] = Cell(
                statistics.median(per_item),
                text,
                _recorded(result["verify"]),
                cpu=statistics.median(cpu_per_item),
            )
            if workload == "seq" and rep == 0:
                rss = result["max_rss_kb"] / 1024
                cells["rss"] = Cell(rss)
                cells["rss-children"] = Cell(rss + result["children_hwm_kb"] / 1024)

    # first run: process wall; the first in a brand-new home, the rest reusing it
    print(f"  {impl} {mode}: first run x{args.first_repeat} ...", file=sys.stderr, flush=True)
    home = workdir / f"{impl}-{mode}-first"
    name = f"bench-first-{tag}"
    walls: list[float] = []
    try:
        for _ in range(args.first_repeat):
            _, finished = run_worker(
                impl, "first", home=home, api_url=api_url, workdir=workdir, name=name
            )
            walls.append(finished.wall)
        verified, _ = run_worker(
            impl,
            "verify",
            home=home,
            api_url=api_url,
            workdir=workdir,
            name=name,
            verify_timeout=args.verify_timeout,
            extra=["--expect-flow-runs", str(len(walls)), "--expect-task-runs", str(len(walls))],
        )
        recorded = _recorded(verified["verify"]) + " (checked by a later process)"
        cells["first-new"] = Cell(walls[0], "", recorded)
        if len(walls) > 1:
            cells["first-existing"] = Cell(
                statistics.median(walls[1:]), f"(median of {len(walls) - 1})", recorded
            )
    except WorkloadFailed as exc:
        cells["first-new"] = Cell(failed=str(exc))
        print(f"  FAILED {impl} {mode} first: {exc}", file=sys.stderr, flush=True)
    return cells


@contextmanager
def _mode_server(impl: str, mode: str, workdir: Path) -> Iterator[str | None]:
    """None in embedded mode; else the API URL of a server of ``impl``'s kind, stopped afterwards."""
    if mode == "embedded":
        yield None
        return
    start: Callable[[Path], Any] = flowplane_server if impl == "flowplane" else prefect_server
    with start(workdir / f"{impl}-server") as server:
        yield server.api_url


# --- report -------------------------------------------------------------------------------

ROWS: list[tuple[str, str, str]] = [  # key, label, unit
    ("seq", "{n} sequential tasks in one flow", "µs/task"),
    ("map", "task.map over {n} items (thread pool)", "µs/item"),
    ("flows", "{n} tiny flow runs", "ms/flow run"),
    ("subflows", "{n} subflows of 5 tasks", "ms/subflow"),
    ("first-new", "first flow run, fresh process, new home", "s wall"),
    ("first-existing", "first flow run, fresh process, existing home", "s wall"),
    ("rss", "peak RSS, {seq}-task workload, worker process", "MiB"),
    ("rss-children", "peak RSS, {seq}-task workload, + child processes", "MiB"),
]
STARTUP_ROWS: list[tuple[str, str, str]] = [
    ("import", "import X", "s"),
    ("from-import", "from X import flow, task", "s"),
    ("help", "X --help", "s wall"),
]


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "n/a"
    if cell.failed:
        return "FAILED"
    if cell.value is None:
        return "n/a"
    return f"{_fmt(cell.value)} {cell.text}".strip()


def _ratio(ours: Cell | None, theirs: Cell | None) -> str:
    if not ours or not theirs or ours.value is None or theirs.value is None:
        return "n/a"
    if ours.failed or theirs.failed or ours.value == 0:
        return "n/a"
    return f"{theirs.value / ours.value:.1f}x"


def _cpu_text(ours: Cell | None, theirs: Cell | None) -> str:
    values = [c.cpu if c is not None and not c.failed else None for c in (ours, theirs)]
    if all(v is None for v in values):
        return ""
    return " / ".join("n/a" if v is None else _fmt(v) for v in values)


def build_report(rows: list[Row], args: argparse.Namespace, notes: list[str]) -> Report:
    report = Report(
        title="SDK overhead: flowplane vs Prefect 3.6.29, each workload in a fresh process"
        + (" (--quick sizes)" if args.quick else ""),
        columns=[
            "workload",
            "mode",
            "unit",
            "flowplane",
            "prefect",
            "ratio",
            "CPU flowplane / prefect",
            "budget",
            "flowplane runs recorded",
        ],
        notes=notes,
    )
    for row in rows:
        ours, theirs = row.cells.get("flowplane"), row.cells.get("prefect")
        budget = BUDGETS.get((row.key, row.mode)) or BUDGETS.get((row.key, None))
        verdict = ""
        if budget is not None:
            label = f"{row.what} [{row.mode}] ≤ {budget:g} {row.unit}"
            if ours is None or ours.value is None or ours.failed:
                met, got = False, "not measured" if not ours or not ours.failed else "FAILED"
            else:
                met, got = ours.value <= budget, f"{_fmt(ours.value)} {row.unit}"
            report.budgets.append((label, met, got))
            verdict = f"≤ {budget:g} {'ok' if met else 'MISSED'}"
        report.rows.append(
            [
                row.what,
                row.mode,
                row.unit,
                _cell_text(ours),
                _cell_text(theirs),
                _ratio(ours, theirs),
                _cpu_text(ours, theirs),
                verdict,
                (ours.recorded if ours and not ours.failed else ""),
            ]
        )
        for impl, cell in row.cells.items():
            if cell.failed:
                notes.append(f"{impl} {row.mode} '{row.what}' FAILED: {cell.failed}")
            elif impl == "prefect" and cell.recorded.startswith("MISSING"):
                notes.append(
                    f"prefect {row.mode} '{row.what}': timed, but its runs were not all "
                    f"recorded: {cell.recorded}"
                )
    failed = [
        f"{row.what} [{row.mode}]"
        for row in rows
        if (cell := row.cells.get("flowplane")) is not None and cell.failed
    ]
    report.budgets.append(
        (
            "every flowplane workload ran and all its runs were recorded",
            not failed,
            "all" if not failed else "FAILED: " + "; ".join(failed),
        )
    )
    return report


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--skip-prefect", action="store_true", help="measure flowplane only")
    parser.add_argument(
        "--modes", default="embedded,server", help="comma-separated: embedded,server (default both)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated workloads of seq,map,flows,subflows (default all; "
        "first run, imports and --help always run)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="flowplane processes per per-item workload, median (default 3; --quick 1)",
    )
    parser.add_argument(
        "--prefect-repeat",
        type=int,
        default=1,
        help="Prefect processes per per-item workload, median (default 1: each takes minutes)",
    )
    parser.add_argument(
        "--first-repeat",
        type=int,
        default=0,
        help="first-run processes per mode: 1 in a new home, the rest reusing it (default 4; --quick 2)",
    )
    parser.add_argument(
        "--startup-repeat",
        type=int,
        default=0,
        help="processes per import/--help figure, median (default 5; --quick 3)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=120.0,
        help="stop a per-item workload after this many seconds, reporting the items done "
        "(default 120; it is Prefect that hits it)",
    )
    parser.add_argument(
        "--verify-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for a workload's runs to be counted through the API (default 60)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a flowplane budget is missed"
    )
    # run.py passes its extra args to every benchmark; ignore the ones meant for others
    args, _unknown = parser.parse_known_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.first_repeat = args.first_repeat or (2 if args.quick else 4)
    args.startup_repeat = args.startup_repeat or (3 if args.quick else 5)
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes takes a comma-separated subset of {','.join(MODES)}")
    args.mode_list = modes
    return args


def run(argv: list[str] | None = None) -> Report:
    """Measure every workload for both implementations in each mode and build the table."""
    args = _parse(argv)
    sizes = dict(QUICK_SIZES if args.quick else SIZES)
    if args.only:
        sizes = {k: v for k, v in sizes.items() if k in args.only.split(",")}
    impls = ["flowplane"] if args.skip_prefect else list(IMPLS)
    notes: list[str] = []
    measured: dict[tuple[str, str], dict[str, Cell]] = {}  # (impl, mode) -> key -> cell
    startup: dict[str, dict[str, Cell]] = {}

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-sdk-") as tmp:
        workdir = Path(tmp)
        for impl in impls:
            print(f"  {impl}: imports and --help ...", file=sys.stderr, flush=True)
            try:
                startup[impl] = measure_startup(impl, workdir, args.startup_repeat)
            except ServerUnavailable as exc:
                notes.append(f"{impl} not measured: {exc}")
        for mode in args.mode_list:
            for impl in impls:
                if impl not in startup:
                    continue
                try:
                    with _mode_server(impl, mode, workdir) as api_url:
                        measured[impl, mode] = measure_mode(
                            impl, mode, api_url, workdir, sizes, args
                        )
                except ServerUnavailable as exc:
                    notes.append(f"{impl} {mode} not measured: {exc}")
                    print(f"  {impl} {mode} not measured: {exc}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    for key, label, unit in STARTUP_ROWS:
        row = Row(label, "-", unit, key)
        for impl in impls:
            if impl in startup and key in startup[impl]:
                row.cells[impl] = startup[impl][key]
        rows.append(row)
    for mode in args.mode_list:
        for key, label, unit in ROWS:
            if key in SIZES and key not in sizes:
                continue
            if key.startswith("rss") and "seq" not in sizes:
                continue
            if key == "first-existing" and args.first_repeat < 2:
                continue
            if key == "rss" and mode == "server":
                continue  # the same as rss-children in server mode: no child processes
            row = Row(
                label.format(n=f"{sizes.get(key, 0):,}", seq=f"{sizes.get('seq', 0):,}"),
                mode,
                unit,
                key,
            )
            for impl in impls:
                cell = measured.get((impl, mode), {}).get(key)
                if cell is not None:
                    row.cells[impl] = cell
            rows.append(row)

    notes += [
        f"machine: {os.cpu_count()} CPUs, 1-min load average {load_start:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end (other work on the machine shows up as noise)",
        "ratio = Prefect ÷ flowplane (how many times more time or memory Prefect takes); "
        "per-item figures exclude interpreter start, imports and a 2-item warm-up of the same "
        "shape; first-run figures are whole-process wall clock (spawn to exit)",
        "embedded: flowplane without FLOWPLANE_API_URL (the API in-process on "
        "$FLOWPLANE_HOME/flowplane.db); Prefect without PREFECT_API_URL, i.e. its default "
        "ephemeral server subprocess on $PREFECT_HOME/prefect.db (started during the warm-up)",
        "server: `flowplane server start` / `prefect server start` on 127.0.0.1, temp SQLite, "
        "started once per mode and implementation; the client process still has a private home",
        f"per-item figures: median of {args.repeat} flowplane and {args.prefect_repeat} Prefect "
        "process(es), [min–max] when more than one; peak RSS from the first seq process",
        f"per-item workloads stop after {args.max_seconds:g} s; '(k/n, capped)' means k items "
        "were done and the figure is over those k",
        "CPU: user + system time of the worker and its child processes (Prefect's ephemeral "
        "server) during the timed part, per item, in the row's unit; it excludes ingestion the "
        "API does after the workload returns",
        "'recorded': fr/tr = COMPLETED flow runs / task runs counted through the API after the "
        "workload returned, and how long until all were counted",
    ]
    return build_report(rows, args, notes)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table; with --check exit 1 when a budget is missed."""
    return run_as_script(run, argv)


if __name__ == "__main__":
    sys.exit(main())
