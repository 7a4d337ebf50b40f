"""Server throughput: concurrent HTTP clients create flow runs and move them Pending → Running → Completed.

Each client owns one HTTP connection and loops: ``POST /api/flow_runs/`` (state Pending), then
``POST /api/flow_runs/{id}/set_state`` Running, then Completed. A run counts when all three
requests succeed and both transitions are accepted; anything else is an error (by kind). The
first ``--warmup`` seconds are excluded; runs/s is finished runs over the measured wall-clock
window. flowplane and the real Prefect 3.6.29 server (each on a fresh SQLite file, one after
the other, never at the same time) get the same load, and the table shows them side by side.

    .venv/bin/python benchmarks/server_throughput.py [--clients 1,8] [--duration 10] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rawhttp  # noqa: E402
from report import Report, run_as_script  # noqa: E402
from servers import RunningServer, ServerUnavailable, flowplane_server, prefect_server  # noqa: E402

#: Budget (DESIGN.md section 6): flowplane, SQLite, 8 clients.
BUDGET_RUNS_PER_SECOND = 500.0
BUDGET_CLIENTS = 8


@dataclass
class Measurement:
    """Outcome of one load level against one server."""

    server: str
    clients: int
    seconds: float
    runs: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    unfinished: int = 0  # runs in flight at the end of the window (not counted either way)
    latencies: list[float] = field(default_factory=list)  # seconds per finished run

    @property
    def runs_per_second(self) -> float:
        return self.runs / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def latency_ms(self, quantile: float) -> float:
        """A latency quantile of finished runs, in milliseconds (nan if none finished)."""
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0] * 1000
        return (
            statistics.quantiles(self.latencies, n=100, method="inclusive")[int(quantile * 100) - 1]
            * 1000
        )


class RunFailed(Exception):
    """One request of a run failed; the message is the error kind (e.g. ``set_state 503``)."""


async def _one_run(http: rawhttp.Connection, flow_id: str) -> None:
    """Create a flow run in Pending and take it through Running to Completed."""
    code, body = await http.post("/flow_runs/", {"flow_id": flow_id, "state": {"type": "PENDING"}})
    if code not in (200, 201):
        raise RunFailed(f"create {code}")
    run_id = body["id"]
    for state_type in ("RUNNING", "COMPLETED"):
        code, body = await http.post(
            f"/flow_runs/{run_id}/set_state", {"state": {"type": state_type}}
        )
        if code not in (200, 201):
            raise RunFailed(f"set_state {code}")
        status = body.get("status")
        if status != "ACCEPT":
            raise RunFailed(f"set_state {state_type} {status}")


async def _client_loop(
    api_url: str,
    flow_id: str,
    window: tuple[float, float],
    stop: float,
    result: Measurement,
    timeout: float,
) -> None:
    """One client: run after run until ``stop``; record those that finish inside ``window``."""
    http = rawhttp.Connection(api_url, timeout=timeout)
    try:
        while (started := time.perf_counter()) < stop:
            error = None
            try:
                await _one_run(http, flow_id)
            except asyncio.CancelledError:
                result.unfinished += 1  # still in flight when the window (plus grace) ended
                raise
            except RunFailed as exc:
                error = str(exc)
            except rawhttp.HTTPError as exc:
                error = str(exc)
            finished = time.perf_counter()
            if finished > window[1]:
                result.unfinished += 1  # in flight when the window ended: neither run nor error
                continue
            if finished < window[0]:
                continue  # warm-up
            if error is None:
                result.runs += 1
                result.latencies.append(finished - started)
            else:
                result.errors[error] += 1
                await asyncio.sleep(0.01)  # do not spin on a server that answers errors instantly
    finally:
        await http.close()


async def measure(
    server: RunningServer, clients: int, duration: float, warmup: float
) -> Measurement:
    """Load ``server`` with ``clients`` concurrent clients for ``warmup + duration`` seconds."""
    async with httpx.AsyncClient(base_url=server.api_url, timeout=30) as http:
        response = await http.post("/flows/", json={"name": "throughput-benchmark"})
        response.raise_for_status()
        flow_id = response.json()["id"]
    start = time.perf_counter()
    window = (start + warmup, start + warmup + duration)
    result = Measurement(server=server.name, clients=clients, seconds=duration)
    tasks = [
        asyncio.create_task(
            _client_loop(server.api_url, flow_id, window, window[1], result, timeout=30)
        )
        for _ in range(clients)
    ]
    # At the window's end, runs still in flight are cut off (they would not count anyway);
    # a short grace lets clients finish a request and close their connections cleanly.
    await asyncio.wait(tasks, timeout=window[1] - time.perf_counter() + 2.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", default="1,8", help="comma-separated client counts (default 1,8)"
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per level (default 10)"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="excluded seconds before each level (default 2)"
    )
    parser.add_argument("--skip-prefect", action="store_true", help="measure flowplane only")
    parser.add_argument(
        "--prefect-no-services",
        action="store_true",
        help="start Prefect with --no-services (API only) instead of its default services",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 unless flowplane reaches {BUDGET_RUNS_PER_SECOND:.0f} runs/s "
        f"with {BUDGET_CLIENTS} clients and 0 errors",
    )
    return parser.parse_args(argv)


def _measure_server(
    start: object, name: str, levels: list[int], args: argparse.Namespace, notes: list[str]
) -> dict[int, Measurement] | None:
    """Start a server, measure each load level on it, stop it; None (with a note) if it cannot start."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        try:
            with start(Path(tmp)) as server:  # type: ignore[operator]
                notes.append(
                    f"{name} settings: " + ", ".join(f"{k}={v}" for k, v in server.settings.items())
                )
                results = {}
                for clients in levels:
                    print(
                        f"  {name}: {clients} client(s), {args.warmup:g} s warm-up + {args.duration:g} s ...",
                        file=sys.stderr,
                        flush=True,
                    )
                    results[clients] = asyncio.run(
                        measure(server, clients, args.duration, args.warmup)
                    )
                return results
        except ServerUnavailable as exc:
            notes.append(f"{name} not measured: {exc}")
            return None


def run(argv: list[str] | None = None) -> Report:
    """Measure both servers at each client count and build the side-by-side report."""
    args = _parse(argv)
    levels = [int(part) for part in args.clients.split(",") if part.strip()]
    notes: list[str] = []
    ours = _measure_server(flowplane_server, "flowplane", levels, args, notes) or {}
    theirs: dict[int, Measurement] = {}
    if not args.skip_prefect:
        services = not args.prefect_no_services

        def start_prefect(workdir: Path) -> object:
            return prefect_server(workdir, services=services)

        theirs = _measure_server(start_prefect, "prefect", levels, args, notes) or {}
        notes.append(
            f"prefect services: {'default (all enabled)' if services else 'off (--no-services)'}"
        )

    report = Report(
        title=f"server throughput: create + Pending→Running→Completed over HTTP, SQLite, "
        f"{args.duration:g} s measured after {args.warmup:g} s warm-up",
        columns=[
            "clients",
            "flowplane runs/s",
            "errors",
            "p50 ms",
            "p99 ms",
            "prefect runs/s",
            "errors",
            "p50 ms",
            "p99 ms",
            "ratio",
        ],
        notes=notes,
    )
    for clients in levels:
        row: list[str] = [str(clients)]
        for side in (ours, theirs):
            m = side.get(clients)
            row += (
                [
                    f"{m.runs_per_second:.1f}",
                    _errors(m),
                    f"{m.latency_ms(0.5):.1f}",
                    f"{m.latency_ms(0.99):.1f}",
                ]
                if m
                else ["n/a", "", "", ""]
            )
        for m in (ours.get(clients), theirs.get(clients)):
            if m is not None and m.runs < 10 * m.clients:
                notes.append(
                    f"{m.server}, {clients} client(s): only {m.runs} runs finished in the window; "
                    f"{m.unfinished} were still in flight at its end (requests stall)"
                )
        a, b = ours.get(clients), theirs.get(clients)
        row.append(_ratio(a, b))
        report.rows.append(row)

    budget = ours.get(BUDGET_CLIENTS)
    label = (
        f"flowplane ≥ {BUDGET_RUNS_PER_SECOND:.0f} runs/s with {BUDGET_CLIENTS} clients, 0 errors"
    )
    if budget is None:
        report.budgets.append((label, False, "not measured"))
    else:
        ok = budget.runs_per_second >= BUDGET_RUNS_PER_SECOND and budget.error_count == 0
        report.budgets.append(
            (label, ok, f"{budget.runs_per_second:.1f} runs/s, {budget.error_count} errors")
        )
    return report


def _errors(m: Measurement) -> str:
    text = str(m.error_count)
    if m.errors:
        text += " (" + ", ".join(f"{kind}×{n}" for kind, n in m.errors.most_common(3)) + ")"
    return text


def _ratio(ours: Measurement | None, theirs: Measurement | None) -> str:
    if ours is None or theirs is None:
        return "n/a"
    if theirs.runs_per_second == 0:
        return "∞" if ours.runs_per_second > 0 else "n/a"
    return f"{ours.runs_per_second / theirs.runs_per_second:.1f}x"


def main(argv: list[str] | None = None) -> int:
    """Run, print the table; with --check exit 1 when a budget is missed."""
    return run_as_script(run, argv)


if __name__ == "__main__":
    sys.exit(main())
