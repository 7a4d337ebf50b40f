"""The in-memory event and log matchers, table-driven."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from flowplane.schemas import filters as f
from flowplane.schemas.events import Event, EventFilter
from flowplane.schemas.logs import Log
from flowplane.server.events.matching import (
    event_matches,
    glob_matches,
    labels_match,
    log_matches,
    parse_text_query,
    text_matches,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)

EVENT = Event(
    occurred=NOW,
    event="prefect.flow-run.Completed",
    resource={
        "prefect.resource.id": "prefect.flow-run.abc",
        "prefect.resource.name": "happy-otter",
        "prefect.state-type": "COMPLETED",
    },
    related=[
        {
            "prefect.resource.id": "prefect.flow.f1",
            "prefect.resource.role": "flow",
            "prefect.resource.name": "etl",
        },
        {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"},
    ],
    payload={"intended": {"from": "RUNNING", "to": "COMPLETED"}, "note": "all rows loaded"},
)


def flt(**kwargs: object) -> EventFilter:
    occurred = {"since": NOW - dt.timedelta(hours=1), "until": NOW + dt.timedelta(hours=1)}
    return EventFilter.model_validate({"occurred": occurred, **kwargs})


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("prefect.flow-run.*", "prefect.flow-run.abc", True),
        ("prefect.flow-run.*", "prefect.task-run.abc", False),
        ("prefect.flow-run.ab?", "prefect.flow-run.abc", True),
        ("!prefect.flow-run.*", "prefect.task-run.abc", True),
        ("!prefect.flow-run.*", "prefect.flow-run.abc", False),
        ("exact", "exact", True),
        ("exact", "Exact", False),
        ("anything", None, False),
        ("!anything", None, False),
    ],
)
def test_glob_matches(pattern: str, value: str | None, expected: bool) -> None:
    assert glob_matches(pattern, value) is expected


def test_labels_need_every_label_and_any_pattern() -> None:
    resource = {"prefect.resource.id": "x.1", "env": "prod"}
    assert labels_match({"env": ["dev", "prod"]}, resource)
    assert labels_match({"env": "prod", "prefect.resource.id": "x.*"}, resource)
    assert not labels_match({"env": "prod", "team": "a"}, resource)
    assert not labels_match({"env": []}, resource)  # an empty list matches nothing


@pytest.mark.parametrize(
    ("query", "include", "exclude", "required"),
    [
        ("error", ["error"], [], []),
        ("error -debug", ["error"], ["debug"], []),
        ("!debug +must", [], ["debug"], ["must"]),
        ('"connection timeout" x', ["connection timeout", "x"], [], []),
        ('-"two words"', [], ["two words"], []),
        ('"say \\"hi\\""', ['say "hi"'], [], []),
        ("- spaced", ["spaced"], [], []),
        ("   ", [], [], []),
    ],
)
def test_parse_text_query(
    query: str, include: list[str], exclude: list[str], required: list[str]
) -> None:
    parsed = parse_text_query(query)
    assert (parsed.include, parsed.exclude, parsed.required) == (include, exclude, required)


def test_text_matches_semantics() -> None:
    text = "Flow run FAILED with timeout"
    assert text_matches(parse_text_query("failed"), text)
    assert text_matches(parse_text_query("nope failed"), text)  # any include term
    assert not text_matches(parse_text_query("failed -timeout"), text)
    assert not text_matches(parse_text_query("+failed +missing"), text)
    assert text_matches(parse_text_query('"with timeout"'), text)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({}, True),
        ({"event": {"prefix": ["prefect.flow-run."]}}, True),
        ({"event": {"prefix": ["prefect.task-run."]}}, False),
        ({"event": {"exclude_prefix": ["prefect.flow-run."]}}, False),
        ({"event": {"name": ["prefect.flow-run.Completed"]}}, True),
        ({"event": {"exclude_name": ["prefect.flow-run.Completed"]}}, False),
        ({"resource": {"id": ["prefect.flow-run.abc"]}}, True),
        ({"resource": {"id": ["prefect.flow-run.other"]}}, False),
        ({"resource": {"id_prefix": ["prefect.flow-run"]}}, True),
        ({"resource": {"labels": {"prefect.state-type": ["COMPLETED", "FAILED"]}}}, True),
        ({"resource": {"labels": {"prefect.resource.name": "!happy-*"}}}, False),
        ({"related": {"role": ["flow"]}}, True),
        ({"related": {"role": ["deployment"]}}, False),
        (
            {"related": {"id": ["prefect.flow.f1"], "role": ["tag"]}},
            False,
        ),  # same resource must match all
        ({"related": {"resources_in_roles": [["prefect.tag.nightly", "tag"]]}}, True),
        ({"related": {"resources_in_roles": [["prefect.tag.nightly", "flow"]]}}, False),
        ({"related": {"labels": {"prefect.resource.name": "etl"}}}, True),
        ({"related": {"id": ["prefect.flow-run.abc"]}}, False),  # the own resource is not related
        ({"related": [{"role": ["flow"]}, {"role": ["tag"]}]}, True),
        ({"related": [{"role": ["flow"]}, {"role": ["work-pool"]}]}, False),
        ({"any_resource": {"id": ["prefect.flow-run.abc"]}}, True),
        ({"any_resource": {"id_prefix": ["prefect.tag."]}}, True),
        ({"any_resource": {"labels": {"prefect.resource.role": "flow"}}}, True),
        ({"any_resource": {"id_prefix": ["prefect.deployment."]}}, False),
        ({"text": {"query": "rows loaded"}}, True),
        ({"text": {"query": "otter"}}, True),
        ({"text": {"query": "otter -nightly"}}, False),
        ({"id": {"id": []}}, True),  # an empty list places no constraint
        ({"id": {"id": [str(uuid.uuid4())]}}, False),
    ],
)
def test_event_matches(criteria: dict[str, object], expected: bool) -> None:
    assert event_matches(flt(**criteria), EVENT) is expected


def test_event_matches_checks_the_time_range_unless_told_not_to() -> None:
    old = flt(
        occurred={"since": NOW + dt.timedelta(minutes=1), "until": NOW + dt.timedelta(hours=1)}
    )
    assert not event_matches(old, EVENT)
    assert event_matches(old, EVENT, check_time=False)
    assert event_matches(flt(id={"id": [str(EVENT.id)]}), EVENT)


def _log(**kwargs: object) -> Log:
    base: dict[str, object] = {
        "name": "flowplane.task_runs",
        "level": 20,
        "message": "Hello there",
        "timestamp": NOW,
    }
    return Log.model_validate({**base, **kwargs})


@pytest.mark.parametrize(
    ("log_filter", "log_kwargs", "expected"),
    [
        (None, {}, True),
        ({"level": {"ge_": 30}}, {"level": 20}, False),
        ({"level": {"ge_": 20, "le_": 20}}, {"level": 20}, True),
        ({"timestamp": {"after_": NOW - dt.timedelta(minutes=1)}}, {}, True),
        ({"timestamp": {"before_": NOW - dt.timedelta(minutes=1)}}, {}, False),
        ({"task_run_id": {"is_null_": True}}, {}, True),
        ({"task_run_id": {"is_null_": False}}, {}, False),
        ({"text": {"query": "HELLO"}}, {}, True),
        ({"text": {"query": "task_runs"}}, {}, True),  # the logger name counts too
        ({"text": {"query": "bye"}}, {}, False),
        ({"operator": "or_", "level": {"ge_": 40}, "text": {"query": "hello"}}, {}, True),
        ({"operator": "and_", "level": {"ge_": 40}, "text": {"query": "hello"}}, {}, False),
    ],
)
def test_log_matches(
    log_filter: dict[str, object] | None, log_kwargs: dict[str, object], expected: bool
) -> None:
    parsed = None if log_filter is None else f.LogFilter.model_validate(log_filter)
    assert log_matches(parsed, _log(**log_kwargs)) is expected


def test_log_matches_flow_run_ids() -> None:
    run = uuid.uuid4()
    parsed = f.LogFilter.model_validate({"flow_run_id": {"any_": [str(run)]}})
    assert log_matches(parsed, _log(flow_run_id=run))
    assert not log_matches(parsed, _log(flow_run_id=uuid.uuid4()))
    assert not log_matches(parsed, _log())
