"""A benchmark's result: a titled table of rows, notes, and the budgets it checked."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Report:
    """What one benchmark prints: a table (side by side with Prefect), notes, and budget verdicts."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    budgets: list[tuple[str, bool, str]] = field(default_factory=list)  # (budget, met, measured)

    @property
    def budgets_met(self) -> bool:
        return all(met for _, met, _ in self.budgets)

    def render(self) -> str:
        """The report as plain text: title, aligned table, notes, budget lines."""
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
        lines = [self.title, ""]
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)))
        lines.append("  ".join("-" * w for w in widths))
        lines += [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            for row in self.rows
        ]
        if self.notes:
            lines.append("")
            lines += [f"  note: {note}" for note in self.notes]
        if self.budgets:
            lines.append("")
            lines += [
                f"  budget {'MET ' if met else 'MISSED'}: {name} (measured {got})"
                for name, met, got in self.budgets
            ]
        return "\n".join(lines)

    def print(self) -> None:
        """Print the rendered report to stdout."""
        print(self.render(), flush=True)


def run_as_script(run: Callable[[list[str] | None], Report], argv: list[str] | None = None) -> int:
    """A benchmark module's ``main``: run it, print its report, and exit 1 under ``--check``
    when a budget is missed (``run`` parses the arguments, so ``--help`` works as usual)."""
    args = sys.argv[1:] if argv is None else argv
    report = run(args)
    report.print()
    return 0 if ("--check" not in args or report.budgets_met) else 1
