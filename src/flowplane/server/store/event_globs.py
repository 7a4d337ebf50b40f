"""The glob patterns of event filters (``*``, ``?``, a leading ``!`` negates) as SQL ``LIKE``.

Shared by the stored-event queries and the task-run events synthesized from states, so
both read a label pattern as the in-memory matcher does.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement


def like_pattern(glob: str) -> str:
    """A glob (``*``, ``?``) as a LIKE pattern escaped with ``\\``."""
    out = []
    for ch in glob:
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def glob(column: Any, pattern: str) -> ColumnElement[bool]:
    """``column`` matches ``pattern``; a missing value (NULL) matches neither it nor its negation."""
    negated = pattern.startswith("!")
    clause = column.like(like_pattern(pattern.removeprefix("!")), escape="\\")
    return sa.and_(column.is_not(None), sa.not_(clause)) if negated else clause
