"""Pure, in-memory matching of events and log lines against the API's filters.

The stored-event queries in ``flowplane.server.store.events`` implement the same
rules in SQL; the websocket streams (``/events/out``, ``/logs/out``) and anything else
that sees an event before it is stored use these. Nothing here does I/O.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowplane.schemas import filters as f
from flowplane.schemas.events import (
    Event,
    EventAnyResourceFilter,
    EventFilter,
    EventNameFilter,
    EventRelatedFilter,
    EventResourceFilter,
    ResourceSpecification,
)
from flowplane.schemas.logs import Log

RESOURCE_ID = "prefect.resource.id"
RESOURCE_ROLE = "prefect.resource.role"


# --- labels ----------------------------------------------------------------------------


def label_patterns(value: str | list[str]) -> list[str]:
    """A specification value as a list of patterns."""
    return [value] if isinstance(value, str) else list(value)


def glob_matches(pattern: str, value: str | None) -> bool:
    """``value`` matches the glob ``pattern`` (``*`` and ``?``); a leading ``!`` negates.

    A missing label never matches, negated or not.
    """
    if value is None:
        return False
    if pattern.startswith("!"):
        return not fnmatch.fnmatchcase(value, pattern[1:])
    return fnmatch.fnmatchcase(value, pattern)


def labels_match(spec: ResourceSpecification, resource: Mapping[str, str]) -> bool:
    """Every label of ``spec`` matches one of its patterns (an empty list matches nothing)."""
    for label, expected in spec.items():
        value = resource.get(label)
        if not any(glob_matches(p, value) for p in label_patterns(expected)):
            return False
    return True


# --- text search -----------------------------------------------------------------------


@dataclass(frozen=True)
class TextQuery:
    """A parsed search: any of ``include``, none of ``exclude``, all of ``required``."""

    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    required: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.include or self.exclude or self.required)


def parse_text_query(query: str) -> TextQuery:
    """Split a search string into terms.

    Terms are separated by whitespace; ``"..."`` groups a phrase (``\\"`` escapes a
    quote inside it); a ``-`` or ``!`` directly before a term excludes it and ``+``
    requires it. A sign followed by a space is ignored.
    """
    result = TextQuery()
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        sign = None
        if query[i] in "-!+":
            if i + 1 < n and not query[i + 1].isspace():
                sign = query[i]
            i += 1
            if sign is None:
                continue
        if i < n and query[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and query[i] != '"':
                if query[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(query[i])
                i += 1
            i += 1  # the closing quote (or the end)
            term = "".join(chars)
            if not term.strip():
                continue
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] != '"':
                i += 1
            term = query[start:i]
            if not term:
                continue
        if sign in ("-", "!"):
            result.exclude.append(term)
        elif sign == "+":
            result.required.append(term)
        else:
            result.include.append(term)
    return result


def text_matches(parsed: TextQuery, haystack: str) -> bool:
    """Whether ``haystack`` satisfies the parsed query, ignoring case."""
    text = haystack.lower()
    if parsed.include and not any(t.lower() in text for t in parsed.include):
        return False
    if any(t.lower() in text for t in parsed.exclude):
        return False
    return all(t.lower() in text for t in parsed.required)


def searchable_event_text(event: Event) -> str:
    """The text an event search looks in: the name, resources and payload as JSON."""
    return " ".join(
        [
            event.event,
            json.dumps(event.resource),
            json.dumps(event.related),
            json.dumps(event.payload, default=str),
        ]
    )


# --- events ----------------------------------------------------------------------------


def _name_matches(flt: EventNameFilter, name: str) -> bool:
    if flt.prefix and not any(name.startswith(p) for p in flt.prefix):
        return False
    if flt.exclude_prefix and any(name.startswith(p) for p in flt.exclude_prefix):
        return False
    if flt.name and name not in flt.name:
        return False
    return not (flt.exclude_name and name in flt.exclude_name)


def _resource_matches(flt: EventResourceFilter, resource: Mapping[str, str]) -> bool:
    resource_id = resource.get(RESOURCE_ID, "")
    if flt.id and resource_id not in flt.id:
        return False
    if flt.id_prefix and not any(resource_id.startswith(p) for p in flt.id_prefix):
        return False
    return not (flt.labels and not labels_match(flt.labels, resource))


def _one_related_matches(flt: EventRelatedFilter, resource: Mapping[str, str]) -> bool:
    resource_id = resource.get(RESOURCE_ID, "")
    role = resource.get(RESOURCE_ROLE, "")
    if flt.id and resource_id not in flt.id:
        return False
    if flt.role and role not in flt.role:
        return False
    if flt.resources_in_roles and (resource_id, role) not in {
        tuple(p) for p in flt.resources_in_roles
    }:
        return False
    return not (flt.labels and not labels_match(flt.labels, resource))


def _any_resource_matches(flt: EventAnyResourceFilter, resource: Mapping[str, str]) -> bool:
    resource_id = resource.get(RESOURCE_ID, "")
    if flt.id and resource_id not in flt.id:
        return False
    if flt.id_prefix and not any(resource_id.startswith(p) for p in flt.id_prefix):
        return False
    return not (flt.labels and not labels_match(flt.labels, resource))


def _related_is_constrained(flt: EventRelatedFilter) -> bool:
    return bool(flt.id or flt.role or flt.resources_in_roles or flt.labels)


def _any_is_constrained(flt: EventAnyResourceFilter) -> bool:
    return bool(flt.id or flt.id_prefix or flt.labels)


def event_matches(flt: EventFilter, event: Event, *, check_time: bool = True) -> bool:
    """Whether ``event`` passes every criterion of ``flt``.

    Args:
        flt: the filter.
        event: the event (received or not).
        check_time: also require ``occurred`` to lie within ``flt.occurred``.
    """
    if check_time and not (flt.occurred.since <= event.occurred <= flt.occurred.until):
        return False
    if flt.id.id and event.id not in flt.id.id:
        return False
    if flt.event is not None and not _name_matches(flt.event, event.event):
        return False
    if flt.resource is not None and not _resource_matches(flt.resource, event.resource):
        return False
    for related in flt.related_filters():
        if _related_is_constrained(related) and not any(
            _one_related_matches(related, r) for r in event.related
        ):
            return False
    everything: list[Mapping[str, str]] = [event.resource, *event.related]
    for any_filter in flt.any_resource_filters():
        if _any_is_constrained(any_filter) and not any(
            _any_resource_matches(any_filter, r) for r in everything
        ):
            return False
    if flt.text is not None:
        parsed = parse_text_query(flt.text.query)
        if not parsed.empty and not text_matches(parsed, searchable_event_text(event)):
            return False
    return True


# --- logs ------------------------------------------------------------------------------


def _log_leaf(leaf: Any, log: Log) -> bool:
    """One leaf of a LogFilter, by the same rules the SQL compiler applies."""
    if isinstance(leaf, f.LogFilterTextSearch):
        needle = leaf.query.lower()
        return needle in log.message.lower() or needle in log.name.lower()
    value = getattr(log, leaf.column)
    checks: list[bool] = []
    if getattr(leaf, "any_", None) is not None:
        checks.append(value in leaf.any_)
    if getattr(leaf, "ge_", None) is not None:
        checks.append(value is not None and value >= leaf.ge_)
    if getattr(leaf, "le_", None) is not None:
        checks.append(value is not None and value <= leaf.le_)
    if getattr(leaf, "after_", None) is not None:
        checks.append(value is not None and value >= leaf.after_)
    if getattr(leaf, "before_", None) is not None:
        checks.append(value is not None and value <= leaf.before_)
    if getattr(leaf, "is_null_", None) is not None:
        checks.append((value is None) == leaf.is_null_)
    return all(checks)


def _combine(operator: f.Operator, results: Iterable[bool]) -> bool:
    values = list(results)
    if not values:
        return True
    return any(values) if operator is f.Operator.or_ else all(values)


def log_matches(flt: f.LogFilter | None, log: Log) -> bool:
    """Whether ``log`` passes ``flt`` (``None`` passes everything)."""
    if flt is None:
        return True
    parts = [
        _log_leaf(getattr(flt, name), log)
        for name in type(flt).model_fields
        if name != "operator" and getattr(flt, name) is not None
    ]
    return _combine(flt.operator, parts)
