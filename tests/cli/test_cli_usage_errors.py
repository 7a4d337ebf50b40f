"""Usage mistakes (unknown command, bad option value, missing argument) are one line and exit 2."""

from __future__ import annotations

import pytest
from cli_harness import flowplane


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nope"], "Error: No such command 'nope'. (see 'flowplane --help')"),
        (
            ["flow-run", "ls", "--limit", "abc"],
            "Error: Invalid value for '--limit'",
        ),
        (
            ["flow-run", "execute"],
            "Error: Missing argument 'id'. (see 'flowplane flow-run execute --help')",
        ),
    ],
)
def test_usage_errors_are_one_line(args: list[str], expected: str) -> None:
    result = flowplane(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected)
    assert result.stdout == ""


def test_help_still_works_and_exits_0() -> None:
    result = flowplane("flow-run", "--help")
    assert result.returncode == 0
    assert "execute" in result.stdout and "resume" in result.stdout
