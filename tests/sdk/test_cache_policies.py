"""Cache policies as pure functions: keys from inputs, code, flow parameters and run ids; ``+`` and ``-``."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from flowplane.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    Inputs,
)
from flowplane.sdk.cache_policies import code_digest, hash_objects


def fn_a(x: int) -> int:
    return x + 1


def fn_b(x: int) -> int:
    return x + 2


def ctx(fn: Any = fn_a, flow_run_id: Any = None, task_run_id: Any = None) -> Any:
    flow_run = SimpleNamespace(id=flow_run_id) if flow_run_id else None
    record = SimpleNamespace(flow_run=flow_run, id=task_run_id or uuid.uuid4())
    return SimpleNamespace(task=SimpleNamespace(fn=fn), record=record)


def test_inputs_key_depends_on_values_not_order() -> None:
    one = INPUTS.compute_key(ctx(), {"x": 1, "y": [1, 2]}, None)
    same = INPUTS.compute_key(ctx(), {"y": [1, 2], "x": 1}, None)
    other = INPUTS.compute_key(ctx(), {"x": 2, "y": [1, 2]}, None)
    assert one == same != other
    assert INPUTS.compute_key(ctx(), {}, None) is None


def test_subtracting_an_input_ignores_it() -> None:
    policy = INPUTS - "debug"
    assert isinstance(policy, Inputs) and policy.exclude == ["debug"]
    a = policy.compute_key(ctx(), {"x": 1, "debug": True}, None)
    b = policy.compute_key(ctx(), {"x": 1, "debug": False}, None)
    assert a == b
    assert INPUTS.compute_key(ctx(), {"x": 1, "debug": True}, None) != a
    # Subtracting from a compound narrows its Inputs part.
    compound = (INPUTS + TASK_SOURCE) - "debug"
    assert compound.compute_key(ctx(), {"x": 1, "debug": 1}, None) == compound.compute_key(
        ctx(), {"x": 1, "debug": 2}, None
    )
    with pytest.raises(TypeError):
        INPUTS - 3  # type: ignore[operator]


def test_task_source_follows_the_code() -> None:
    assert TASK_SOURCE.compute_key(ctx(fn_a), {}, None) == TASK_SOURCE.compute_key(
        ctx(fn_a), {}, None
    )
    assert TASK_SOURCE.compute_key(ctx(fn_a), {}, None) != TASK_SOURCE.compute_key(
        ctx(fn_b), {}, None
    )


def test_code_digest_is_stable_with_nested_code() -> None:
    def outer() -> list[int]:
        return [i for i in range(3) if (lambda v: v)(i)]

    # repr() of nested code objects holds memory addresses; the digest must not.
    assert code_digest(outer) == code_digest(outer)
    assert len(code_digest(outer)) == 32


def test_flow_parameters_and_run_id() -> None:
    assert FLOW_PARAMETERS.compute_key(ctx(), {}, {"a": 1}) != FLOW_PARAMETERS.compute_key(
        ctx(), {}, {"a": 2}
    )
    assert FLOW_PARAMETERS.compute_key(ctx(), {}, None) is None
    run = uuid.uuid4()
    assert RUN_ID.compute_key(ctx(flow_run_id=run), {}, None) == str(run)
    task_run = uuid.uuid4()
    assert RUN_ID.compute_key(ctx(task_run_id=task_run), {}, None) == str(task_run)


def test_combining_policies() -> None:
    assert NO_CACHE.compute_key(ctx(), {"x": 1}, None) is None
    assert NO_CACHE + INPUTS is INPUTS
    assert INPUTS + NO_CACHE is INPUTS
    combined = INPUTS + TASK_SOURCE + FLOW_PARAMETERS
    assert isinstance(combined, CompoundCachePolicy) and len(combined.policies) == 3
    key = combined.compute_key(ctx(), {"x": 1}, {"p": 1})
    assert key != combined.compute_key(ctx(), {"x": 1}, {"p": 2})
    assert isinstance(DEFAULT, CompoundCachePolicy)
    run = uuid.uuid4()
    assert DEFAULT.compute_key(ctx(flow_run_id=run), {"x": 1}, None) != DEFAULT.compute_key(
        ctx(flow_run_id=uuid.uuid4()), {"x": 1}, None
    )


def test_cache_key_fn_policy_and_configure() -> None:
    policy = CachePolicy.from_cache_key_fn(lambda c, inputs: f"k-{inputs['x']}")
    assert isinstance(policy, CacheKeyFnPolicy)
    assert policy.compute_key(ctx(), {"x": 7}, None) == "k-7"
    configured = INPUTS.configure(isolation_level="SERIALIZABLE", key_storage="/tmp/keys")
    assert configured.isolation_level.value == "SERIALIZABLE"
    assert configured.key_storage == "/tmp/keys"
    assert INPUTS.isolation_level is None  # configure returns a copy
    with pytest.raises(ValueError):
        INPUTS.configure(isolation_level="SOMETIMES")


def test_unhashable_inputs_say_how_to_fix_it() -> None:
    import threading

    with pytest.raises(ValueError, match="exclude the unhashable"):
        INPUTS.compute_key(ctx(), {"lock": threading.Lock()}, None)
    assert hash_objects(1, "a") == hash_objects(1, "a")
