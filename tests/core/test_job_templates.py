"""Base job templates: shape checks and rendering placeholders from job variables over defaults."""

from __future__ import annotations

import pytest

from flowplane.core import deployments as d
from flowplane.core.job_templates import render, template_problem

TEMPLATE = {
    "job_configuration": {
        "command": "{{ command }}",
        "env": "{{ env }}",
        "labels": {"team": "{{ team }}"},
        "name": "run-{{ name }}-x",
        "stream_output": "{{ stream_output }}",
    },
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": "string"},
            "env": {"type": "object", "default": {}},
            "team": {"type": "string", "default": "data"},
            "name": {"type": "string"},
            "stream_output": {"type": "boolean", "default": True},
        },
    },
}


def test_render_fills_whole_and_embedded_placeholders() -> None:
    job = render(TEMPLATE, {"env": {"A": "1"}, "name": "nightly", "command": "python x.py"})
    assert job == {
        "command": "python x.py",
        "env": {"A": "1"},
        "labels": {"team": "data"},
        "name": "run-nightly-x",
        "stream_output": True,
    }


def test_render_drops_whole_placeholders_without_value_and_blanks_embedded_ones() -> None:
    job = render(TEMPLATE, {})
    assert "command" not in job
    assert job["name"] == "run--x"
    assert job["env"] == {}


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ({}, None),
        (TEMPLATE, None),
        ({"job_configuration": {}}, "must contain both"),
        ({"variables": {}}, "must contain both"),
        (
            {"job_configuration": {"x": "{{ nope }}"}, "variables": {"properties": {}}},
            "undeclared variable(s): nope",
        ),
    ],
)
def test_template_problem(template: dict, needle: str | None) -> None:
    problem = template_problem(template)
    if needle is None:
        assert problem is None
    else:
        assert problem is not None and needle in problem


def test_parameters_merge_key_by_key() -> None:
    assert d.merged_parameters({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 3, "c": 4}
    assert d.merged_parameters(None, None) == {}


def test_worker_online_by_heartbeat_age() -> None:
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert d.worker_online(now - timedelta(seconds=80), 30, now)
    assert not d.worker_online(now - timedelta(seconds=95), 30, now)
    assert not d.worker_online(None, 30, now)
    assert d.worker_online(now - timedelta(seconds=25), None, now)


def test_deployment_slot_decisions() -> None:
    assert d.deployment_slot(None, 10, None) is d.SlotDecision.ACCEPT
    assert d.deployment_slot(2, 1, "ENQUEUE") is d.SlotDecision.ACCEPT
    assert d.deployment_slot(2, 2, "ENQUEUE") is d.SlotDecision.WAIT
    assert d.deployment_slot(2, 2, None) is d.SlotDecision.WAIT
    assert d.deployment_slot(1, 1, "CANCEL_NEW") is d.SlotDecision.CANCEL
    assert d.available_slots(None, 3) is None
    assert d.available_slots(2, 3) == 0


def test_variables_problem_checks_types_of_given_values_only() -> None:
    from flowplane.core.job_templates import PROCESS_TEMPLATE, default_template, variables_problem

    assert variables_problem(TEMPLATE, {"env": {"A": "1"}}) is None
    problem = variables_problem(TEMPLATE, {"stream_output": "yes"})
    assert problem is not None and "'stream_output'" in problem
    assert variables_problem({}, {"anything": 1}) is None
    assert default_template("process") == PROCESS_TEMPLATE
    assert default_template("process") is not PROCESS_TEMPLATE
    assert default_template("kubernetes") == {}
    assert template_problem(PROCESS_TEMPLATE) is None
    rendered = render(PROCESS_TEMPLATE, {"env": {"X": "1"}, "working_dir": "/tmp"})
    assert rendered["env"] == {"X": "1"} and rendered["stream_output"] is True
    assert rendered["working_dir"] == "/tmp" and "command" not in rendered
