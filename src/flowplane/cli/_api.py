"""What the API commands share: a sync client, id parsing, output choice, times for people, and errors as one line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from flowplane.cli.output import fail

if TYPE_CHECKING:
    import datetime as dt
    from uuid import UUID

    from rich.console import Console

    from flowplane.client import Client
    from flowplane.settings import Settings

OUTPUT_HELP = "Output format: 'json' for scripts (default: a table for people)."


def output_option() -> Any:
    return typer.Option(None, "--output", "-o", help=OUTPUT_HELP)


def wants_json(output: str | None) -> bool:
    """True for ``-o json``; any other format is an error."""
    if output is None:
        return False
    if output.lower() != "json":
        fail(f"Unknown output format {output!r}; only 'json' is supported.")
    return True


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn flowplane errors raised inside into one line on stderr and exit 1."""
    from pydantic import ValidationError

    from flowplane.exceptions import FlowplaneError

    try:
        yield
    except FlowplaneError as exc:
        fail(str(exc))
    except ValidationError as exc:  # settings from the environment or a profile
        first: Any = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        name = f"FLOWPLANE_{where.upper()}" if where else "value"
        fail(f"Invalid setting {name}: {first.get('msg', exc)}")


def load_settings() -> Settings:
    """The settings, read now; invalid ones are a one-line error."""
    from flowplane.settings import Settings

    with one_line_errors():
        return Settings.load()


@contextmanager
def api_client() -> Iterator[Client]:
    """A sync client for the configured API (or the embedded one); errors become one line."""
    from flowplane.client import get_client

    settings = load_settings()
    with one_line_errors(), get_client(sync_client=True, settings=settings) as client:
        yield client


def parse_id(value: str, what: str) -> UUID:
    """``value`` as a UUID, or a one-line error naming ``what`` it should identify."""
    from uuid import UUID

    try:
        return UUID(value.strip())
    except ValueError:
        fail(f"{value!r} is not a valid {what} id (expected a UUID).")


def console() -> Console:
    """A Rich console; wide when printing to a pipe so tables are not cut."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200, soft_wrap=False)


def ago(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """``when`` relative to ``now``, for people: '5 seconds ago', 'in 3 minutes'."""
    import datetime as dt

    if when is None:
        return ""
    now = now or dt.datetime.now(dt.timezone.utc)
    seconds = (now - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size or unit == "second":
            count = int(seconds // size)
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return ""  # pragma: no cover


def confirm_or_exit(question: str, yes: bool, *, required: bool = False) -> None:
    """Ask ``question`` when a person is at the terminal.

    Without a terminal the answer is yes, unless ``required`` (destructive commands),
    where ``--yes`` must be given.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        if required:
            fail("Refusing to go on without confirmation: pass --yes.")
        return
    if not typer.confirm(question, default=False):
        fail("Aborted.")
