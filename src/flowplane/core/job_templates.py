"""Base job templates: checking their shape and rendering a job's configuration from variables.

A template has a ``job_configuration`` (any JSON whose strings may hold ``{{ name }}``
placeholders) and ``variables`` (a JSON schema whose properties name the placeholders
and give their defaults). Rendering fills each placeholder from the run's job variables
over the schema's defaults. A string that is exactly one placeholder takes the value
itself (a number stays a number); a placeholder inside a longer string is replaced by
the value's text. A whole-string placeholder with no value drops its key, as Prefect does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

#: ``{{ name }}``; dotted names reach into values (``{{ image.tag }}``).
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")

_MISSING = object()


def placeholders(value: Any) -> set[str]:
    """Every variable name used in ``value``'s strings (first part of dotted names)."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(m.group(1).split(".")[0] for m in PLACEHOLDER.finditer(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= placeholders(item)
    elif isinstance(value, list):
        for item in value:
            found |= placeholders(item)
    return found


def template_problem(template: Mapping[str, Any]) -> str | None:
    """Why ``template`` is not a valid base job template (None when it is; ``{}`` is)."""
    if not template:
        return None
    if "job_configuration" not in template or "variables" not in template:
        return (
            "The `base_job_template` must contain both a `job_configuration` key and a "
            "`variables` key."
        )
    variables = template["variables"]
    if not isinstance(variables, Mapping):
        return "The `variables` of a base job template must be a JSON schema object."
    declared = set((variables.get("properties") or {}).keys())
    undeclared = sorted(
        name
        for name in placeholders(template["job_configuration"])
        if name not in declared and not name.startswith("prefect")
    )
    if undeclared:
        return (
            "The variables specified in the job configuration template must be present as "
            "properties in the variables schema. Your job configuration uses the following "
            f"undeclared variable(s): {', '.join(undeclared)}."
        )
    return None


def defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    """The default value of each variable the template's schema declares one for."""
    properties = (template.get("variables") or {}).get("properties") or {}
    return {name: spec["default"] for name, spec in properties.items() if "default" in spec}


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    current: Any = values
    for part in name.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _fill(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value.strip())
        if whole:
            return _lookup(values, whole.group(1))
        return PLACEHOLDER.sub(
            lambda m: (
                "" if (v := _lookup(values, m.group(1))) is _MISSING or v is None else _text(v)
            ),
            value,
        )
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            filled = _fill(item, values)
            if filled is not _MISSING:
                out[key] = filled
        return out
    if isinstance(value, list):
        return [v for v in (_fill(item, values) for item in value) if v is not _MISSING]
    return value


def render(template: Mapping[str, Any], job_variables: Mapping[str, Any] | None) -> dict[str, Any]:
    """The job configuration with every placeholder filled (job variables over defaults)."""
    values = {**defaults(template), **(job_variables or {})}
    rendered = _fill(template.get("job_configuration") or {}, values)
    return rendered if isinstance(rendered, dict) else {}


#: The base job template a ``process`` pool gets when none is given: what the process
#: worker launches (command, environment, working directory) and how it names it.
PROCESS_TEMPLATE: dict[str, Any] = {
    "job_configuration": {
        "command": "{{ command }}",
        "env": "{{ env }}",
        "labels": "{{ labels }}",
        "name": "{{ name }}",
        "stream_output": "{{ stream_output }}",
        "working_dir": "{{ working_dir }}",
    },
    "variables": {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "title": "Name",
                "description": "Name given to the process.",
            },
            "env": {
                "type": "object",
                "title": "Environment Variables",
                "additionalProperties": {"type": "string"},
                "description": "Environment variables to set for the process.",
            },
            "labels": {
                "type": "object",
                "title": "Labels",
                "additionalProperties": {"type": "string"},
                "description": "Labels for the process.",
            },
            "command": {
                "type": "string",
                "title": "Command",
                "description": "The command that starts the flow run (default: the worker's).",
            },
            "stream_output": {
                "type": "boolean",
                "title": "Stream Output",
                "default": True,
                "description": "Whether to stream the process's output to the worker's.",
            },
            "working_dir": {
                "type": "string",
                "title": "Working Directory",
                "format": "path",
                "description": "The folder to start the process in (default: a temporary one).",
            },
        },
    },
}


def default_template(pool_type: str) -> dict[str, Any]:
    """The template a new pool of ``pool_type`` gets when none is given (``{}`` if unknown)."""
    import copy

    return copy.deepcopy(PROCESS_TEMPLATE) if pool_type == "process" else {}


def variables_problem(template: Mapping[str, Any], job_variables: Mapping[str, Any]) -> str | None:
    """Why ``job_variables`` do not fit the template's variables schema (None when they do).

    Only the values given are checked: a required variable may be left to its default
    or to the worker.
    """
    import jsonschema

    schema = dict(template.get("variables") or {})
    if not schema or not job_variables:
        return None
    schema.pop("required", None)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(dict(job_variables)),
        key=lambda e: list(e.path),
    )
    if not errors:
        return None
    error = errors[0]
    field = ".".join(str(p) for p in error.path) or "?"
    return f"Validation failed for field {field!r}. Failure reason: {error.message}"
