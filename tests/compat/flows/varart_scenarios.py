"""Real Prefect 3 variables and artifacts against a flowplane server; prints what they did as JSON.

Run with the .venv-compat interpreter and PREFECT_API_URL pointing at the server under test:
``python varart_scenarios.py TAG``. The last stdout line is ``COMPAT-RESULT {json}``; each
step's outcome (or its traceback) is recorded so one broken endpoint does not hide the others.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import traceback
from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import get_run_context
from prefect.variables import Variable

TAG = sys.argv[1] if len(sys.argv) > 1 else "local"
RESULT: dict[str, Any] = {"tag": TAG, "steps": {}, "errors": {}}


def step(name: str, body: Callable[[], Any]) -> None:
    try:
        RESULT["steps"][name] = body()
    except Exception:
        RESULT["errors"][name] = traceback.format_exc()


# --- variables ---------------------------------------------------------------------------


def variables() -> dict[str, Any]:
    name = f"compat_var_{TAG}"
    out: dict[str, Any] = {"name": name}
    Variable.set(name, {"rows": [1, 2], "ok": True}, tags=["compat"])
    out["got"] = Variable.get(name)
    try:
        Variable.set(name, "again")
        out["refused"] = None
    except ValueError as exc:
        out["refused"] = str(exc)
    Variable.set(name, 7, tags=["compat", "second"], overwrite=True)
    out["after_overwrite"] = Variable.get(name)
    out["default"] = Variable.get(f"missing_{TAG}", default="fallback")
    Variable.set(f"kept_{TAG}", "stays", tags=["compat"])
    Variable.set(f"gone_{TAG}", None)
    out["unset"] = Variable.unset(f"gone_{TAG}")
    out["unset_again"] = Variable.unset(f"gone_{TAG}")
    return out


async def async_variables() -> dict[str, Any]:
    name = f"compat_async_{TAG}"
    await Variable.aset(name, [1, "two"])
    value = await Variable.aget(name)
    return {"name": name, "value": value}


# --- artifacts in a real flow -----------------------------------------------------------


@task
def publish_table() -> dict[str, str]:
    artifact_id = create_table_artifact(
        [{"a": 1, "b": math.nan}, {"a": 2, "b": 3.5}], key=f"table-{TAG}", description="rows"
    )
    run = get_run_context().task_run
    return {"artifact_id": str(artifact_id), "task_run_id": str(run.id)}


@flow(name="compat-artifacts")
def artifacts_flow() -> dict[str, Any]:
    run = get_run_context().flow_run
    markdown = create_markdown_artifact("# Report\nall good", key=f"report-{TAG}")
    second = create_markdown_artifact("# Report\nsecond", key=f"report-{TAG}")
    link = create_link_artifact("https://example.com", "Example", key=f"link-{TAG}")
    progress = create_progress_artifact(10.0, key=f"progress-{TAG}")
    update_progress_artifact(progress, 75.0)
    table = publish_table()
    return {
        "flow_run_id": str(run.id),
        "markdown": str(markdown),
        "markdown_latest": str(second),
        "link": str(link),
        "progress": str(progress),
        "table": table,
    }


def main() -> None:
    step("variables", variables)
    step("async_variables", lambda: asyncio.run(async_variables()))
    step("artifacts", artifacts_flow)
    print("COMPAT-RESULT " + json.dumps(RESULT))


if __name__ == "__main__":
    main()
