"""Client operations on logs, events and the server itself (health, hello, version)."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

from flowplane.client._operations import body, dump, enum_value, operation
from flowplane.client._protocol import Call, model, models, nothing, value
from flowplane.exceptions import ClientError
from flowplane.schemas.events import Event, EventFilter, EventPage
from flowplane.schemas.filters import LogFilter
from flowplane.schemas.logs import Log, LogCreate
from flowplane.schemas.sorting import LogSort


class LogEventOperations:
    """Logs and events: what runs wrote and what happened."""

    @operation
    def create_logs(self, logs: Iterable[LogCreate | Log | dict[str, Any]]) -> Call[None]:
        """Send log lines (``name``, ``level``, ``message``, ``timestamp`` and run ids).

        Raises:
            ValidationFailed: a line is malformed.
        """
        payload = [_log_json(line) for line in logs]
        return Call("POST", "/logs/", nothing, json=payload)

    @operation
    def read_logs(
        self,
        log_filter: LogFilter | dict[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort: LogSort | str = LogSort.TIMESTAMP_ASC,
    ) -> Call[list[Log]]:
        """List log lines matching ``log_filter``, oldest first unless ``sort`` says otherwise."""
        payload = body(logs=log_filter, limit=limit, offset=offset, sort=enum_value(sort))
        return Call("POST", "/logs/filter", models(Log), json=payload)

    @operation
    def create_events(self, events: Iterable[Event | dict[str, Any]]) -> Call[None]:
        """Emit events (``POST /events``); the server stamps when it received them.

        Raises:
            ValidationFailed: an event is malformed (e.g. no ``prefect.resource.id``).
        """
        payload = [e.model_dump(mode="json") if isinstance(e, Event) else dict(e) for e in events]
        return Call("POST", "/events", nothing, json=payload)

    @operation
    def read_events(
        self, filter: EventFilter | dict[str, Any] | None = None, limit: int = 50
    ) -> Call[EventPage]:
        """One page of the events matching ``filter`` (newest first by default).

        Returns:
            The page: ``events``, the ``total`` matching and the ``next_page`` URL,
            which :meth:`read_events_page` follows.
        """
        payload = body(filter=filter, limit=limit)
        return Call("POST", "/events/filter", model(EventPage), json=payload)

    @operation
    def read_events_page(self, next_page: str) -> Call[EventPage]:
        """The page of events at ``next_page`` (a URL from a previous page)."""
        return Call("GET", next_page, model(EventPage))


class ServerOperations:
    """The server itself: is it there, which API does it speak."""

    @operation
    def api_healthcheck(self) -> Generator[Call[Any], Any, Exception | None]:
        """Check that the API answers.

        Returns:
            ``None`` when healthy, else the error met (it is returned, not raised).
        """
        try:
            yield Call("GET", "/health", nothing)
        except ClientError as exc:
            return exc
        return None

    @operation
    def hello(self) -> Call[str]:
        """The server's greeting (a cheap round trip)."""
        return Call("GET", "/hello", value(str))

    @operation
    def api_version(self) -> Call[str]:
        """The version of the Prefect REST API the server speaks."""
        return Call("GET", "/admin/version", value(str))


def _log_json(line: Any) -> Any:
    if isinstance(line, LogCreate):
        return line.model_dump(mode="json")
    if isinstance(line, Log):
        return line.model_dump(
            mode="json",
            include={"name", "level", "message", "timestamp", "flow_run_id", "task_run_id"},
        )
    return dump(line)
