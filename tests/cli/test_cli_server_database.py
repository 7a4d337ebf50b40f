"""``flowplane server database`` (upgrade, downgrade, reset with --yes) and a light ``flowplane --help``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_harness import ok, ok_json, one_line_error

from flowplane.client import get_client
from flowplane.embedded import shutdown_embedded_servers


def test_upgrade_creates_the_database(flowplane_home: Path) -> None:
    out = ok("server", "database", "upgrade")
    assert "Upgraded the database to head" in out
    assert (flowplane_home / "flowplane.db").exists()
    assert "Upgraded" in ok("server", "database", "upgrade")  # again: nothing to do, still fine


def test_reset_needs_yes_and_then_drops_everything(flowplane_home: Path) -> None:
    with get_client(sync_client=True) as client:
        client.create_flow_from_name("doomed")
    shutdown_embedded_servers()

    assert "pass --yes" in one_line_error("server", "database", "reset")
    assert [f["name"] for f in ok_json("flow", "ls")] == ["doomed"]  # refused: nothing changed

    assert "Reset the database" in ok("server", "database", "reset", "--yes")
    assert ok_json("flow", "ls") == []


def test_downgrade_to_base_then_upgrade(flowplane_home: Path) -> None:
    ok("server", "database", "upgrade")
    assert "pass --yes" in one_line_error("server", "database", "downgrade", "-r", "base")
    assert "Downgraded the database to base" in ok(
        "server", "database", "downgrade", "-r", "base", "--yes"
    )
    import sqlite3

    with sqlite3.connect(flowplane_home / "flowplane.db") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert "flow" not in tables and "flow_run" not in tables
    ok("server", "database", "upgrade")
    assert ok_json("flow", "ls") == []


def test_a_bad_revision_is_one_line(flowplane_home: Path) -> None:
    assert "Database upgrade failed" in one_line_error(
        "server", "database", "upgrade", "-r", "nonexistent"
    )


def test_help_lists_the_groups_and_imports_nothing_heavy() -> None:
    out = ok("--help")
    for group in ("flow", "flow-run", "task-run", "config", "profile", "server"):
        assert group in out
    assert "database" in ok("server", "--help")
    code = (
        "import sys, flowplane.cli.main; "
        "print([m for m in ('fastapi', 'sqlalchemy', 'httpx', 'flowplane.server', 'flowplane.client', 'pydantic_settings') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
