"""Cache-hit overhead: a cached task called again with the same inputs, flowplane beside Prefect 3.6.29.

Each implementation runs ``benchmarks/workloads/cache_worker.py`` in a fresh interpreter
with a private temp home, embedded (flowplane's in-process API; Prefect's ephemeral
server): µs per cache hit (the Cached state, with the value read back from the local
result storage) and, for reference, µs per uncached call of the same task body.

    .venv/bin/python benchmarks/cache_hit.py [--quick] [--skip-prefect]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report, run_as_script  # noqa: E402
from sdk_overhead import python_of, spawn, worker_env  # noqa: E402
from servers import ServerUnavailable  # noqa: E402

WORKER = Path(__file__).resolve().parent / "workloads" / "cache_worker.py"


def _measure(impl: str, workdir: Path, n: int) -> dict[str, float]:
    out = workdir / f"{impl}.json"
    finished = spawn(
        [str(python_of(impl)), str(WORKER), "--impl", impl, "--n", str(n), "--out", str(out)],
        worker_env(impl, workdir / f"{impl}-home", None),
        workdir,
        timeout=900,
    )
    if finished.returncode != 0 or not out.exists():
        raise RuntimeError(f"{impl} worker failed ({finished.returncode}):\n{finished.output}")
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def run(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50 calls instead of 300")
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--check", action="store_true", help="(no budgets yet; accepted)")
    args, _unknown = parser.parse_known_args(argv)  # run.py passes extra args to every benchmark
    n = 50 if args.quick else 300
    impls = ["flowplane"] if args.skip_prefect else ["flowplane", "prefect"]
    results: dict[str, dict[str, float]] = {}
    notes = [f"{n} calls per timed flow run, best of 3; embedded mode; local result storage"]
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        for impl in impls:
            print(f"  {impl}: cache hits ...", file=sys.stderr, flush=True)
            try:
                results[impl] = _measure(impl, Path(tmp), n)
            except (ServerUnavailable, RuntimeError) as exc:
                notes.append(f"{impl} not measured: {exc}")
    report = Report(
        title="Cache-hit overhead (µs per call, lower is better)",
        columns=["what", "flowplane", "prefect 3.6.29", "prefect / flowplane"],
        notes=notes,
    )
    for key, label in (("hit_us", "cached task, cache hit"), ("plain_us", "same task, uncached")):
        ours = results.get("flowplane", {}).get(key)
        theirs = results.get("prefect", {}).get(key)
        ratio = f"{theirs / ours:.1f}x" if ours and theirs else "-"
        report.rows.append(
            [
                label,
                f"{ours:.0f}" if ours is not None else "-",
                f"{theirs:.0f}" if theirs is not None else "-",
                ratio,
            ]
        )
    return report


if __name__ == "__main__":
    sys.exit(run_as_script(run))
