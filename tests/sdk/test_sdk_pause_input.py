"""Pause, suspend and resume inside one process (embedded API), and typed run input: send_input, receive_input, keysets."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pydantic
import pytest

from flowplane import flow, task
from flowplane.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from flowplane.flow_runs import (
    apause_flow_run,
    aresume_flow_run,
    pause_flow_run,
    resume_flow_run,
    suspend_flow_run,
)
from flowplane.input import (
    GetInputHandler,
    RunInput,
    asend_input,
    keyset_from_base_key,
    keyset_from_paused_state,
    read_flow_run_input,
    receive_input,
    run_input_subclass_from_type,
    send_input,
)
from flowplane.input.run_input import AutomaticRunInput
from flowplane.sdk.context import FlowRunContext
from flowplane.sdk.states import Completed, Paused


class Approval(RunInput):
    approved: bool
    note: str = "none"


class Point(pydantic.BaseModel):
    x: int
    y: int


def _current_run_id() -> UUID:
    context = FlowRunContext.get()
    assert context is not None
    return context.flow_run.id


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``fn`` in a thread; its result (or exception) lands in the returned list."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # handed to the test to assert on
            out.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


def _wait_paused(client: Any, run_id: UUID, timeout: float = 20) -> Any:
    from sdk_support import eventually

    def paused() -> Any:
        run = client.read_flow_run(run_id)
        return run if run.state is not None and run.state.type.value == "PAUSED" else None

    run = eventually(paused, timeout)
    assert run is not None, "the run never paused"
    return run


def test_pause_waits_for_typed_input_and_returns_it(client) -> None:
    ids: queue.Queue[UUID] = queue.Queue()

    @flow
    def approve() -> tuple[bool, str]:
        ids.put(_current_run_id())
        answer = pause_flow_run(wait_for_input=Approval, timeout=60, poll_interval=0.2)
        return answer.approved, answer.note

    thread, out = _in_thread(approve)
    run_id = ids.get(timeout=30)
    paused = _wait_paused(client, run_id)
    keyset = paused.state.state_details.run_input_keyset
    assert keyset == keyset_from_base_key("paused-1")
    schema = json.loads(client.read_flow_run_input(run_id, keyset["schema"]))
    assert schema["title"] == "Approval"
    assert schema["required"] == ["approved"]

    # Input that does not fit the schema is refused with the server's reason; still paused.
    with pytest.raises(RuntimeError, match="is not of type 'boolean'"):
        resume_flow_run(run_id, {"approved": "maybe"})
    with pytest.raises(RuntimeError, match="'approved' is a required property"):
        resume_flow_run(run_id)
    assert client.read_flow_run(run_id).state.type.value == "PAUSED"

    resume_flow_run(run_id, {"approved": True, "note": "ship it"})
    thread.join(30)
    assert out == [(True, "ship it")]
    states = [s.type.value for s in client.read_flow_run_states(run_id)]
    assert states == ["RUNNING", "PAUSED", "RUNNING", "COMPLETED"]
    # A resumed pause is part of the same attempt.
    assert client.read_flow_run(run_id).run_count == 1


def test_pause_without_input_and_with_plain_types(client) -> None:
    ids: queue.Queue[UUID] = queue.Queue()

    @flow
    def several() -> list[Any]:
        ids.put(_current_run_id())
        first = pause_flow_run(timeout=60, poll_interval=0.2)
        second = pause_flow_run(wait_for_input=int, timeout=60, poll_interval=0.2)
        third = pause_flow_run(wait_for_input=Point, timeout=60, poll_interval=0.2)
        return [first, second, third.x + third.y]

    thread, out = _in_thread(several)
    run_id = ids.get(timeout=30)
    for run_input in (None, {"value": 41}, {"x": 1, "y": 2}):
        paused = _wait_paused(client, run_id)
        key = paused.state.state_details.pause_key
        resume_flow_run(run_id, run_input)
        if run_input is not None:
            assert json.loads(client.read_flow_run_input(run_id, f"paused-{key}-response")) == (
                run_input
            )
    thread.join(30)
    assert out == [[None, 41, 3]]
    assert client.read_flow_run(run_id).empirical_policy.pause_keys == ["1", "2", "3"]


def test_a_pause_key_fires_once_per_attempt(client) -> None:
    ids: queue.Queue[UUID] = queue.Queue()

    @flow
    def twice() -> str:
        ids.put(_current_run_id())
        pause_flow_run(timeout=60, poll_interval=0.2, key="gate")
        # The same key again: already fired and resumed, so it does not wait.
        pause_flow_run(timeout=60, poll_interval=0.2, key="gate")
        return "through"

    thread, out = _in_thread(twice)
    run_id = ids.get(timeout=30)
    _wait_paused(client, run_id)
    resume_flow_run(run_id)
    thread.join(30)
    assert out == ["through"]


def test_an_unanswered_pause_fails_the_run(client) -> None:
    @flow
    def forgotten() -> None:
        pause_flow_run(timeout=1, poll_interval=0.2)

    state = forgotten(return_state=True)
    assert state.type.value == "FAILED"
    with pytest.raises(FlowPauseTimeout, match="paused and never resumed"):
        state.result()
    run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.state.type.value == "FAILED"
    # Too late to resume.
    with pytest.raises(NotPausedError):
        resume_flow_run(run.id)


async def test_async_pause_resumed_with_input_by_another_task(client) -> None:
    ids: asyncio.Queue[UUID] = asyncio.Queue()

    @flow
    async def waits() -> bool:
        await ids.put(_current_run_id())
        answer = await apause_flow_run(wait_for_input=Approval, timeout=60, poll_interval=0.2)
        return answer.approved

    running = asyncio.ensure_future(waits())
    run_id = await asyncio.wait_for(ids.get(), 30)
    await asyncio.to_thread(_wait_paused, client, run_id)
    await aresume_flow_run(run_id, {"approved": False})
    assert await asyncio.wait_for(running, 30) is False


def test_refusals_are_clear_and_change_nothing(client) -> None:
    with pytest.raises(RuntimeError, match="only be paused from within a flow run"):
        pause_flow_run(timeout=1)

    @flow
    def done() -> int:
        return 1

    state = done(return_state=True)
    run_id = state.state_details.flow_run_id
    with pytest.raises(NotPausedError, match="isn't paused"):
        resume_flow_run(run_id)
    assert client.read_flow_run(run_id).state.type.value == "COMPLETED"
    with pytest.raises(ObjectNotFound):
        resume_flow_run(uuid4())


def test_suspending_needs_a_deployment_and_never_inside_a_task(client) -> None:
    @task
    def inner() -> None:
        suspend_flow_run()

    @flow
    def suspends() -> list[str]:
        seen = []
        try:
            suspend_flow_run(timeout=60)
        except RuntimeError as exc:
            seen.append(str(exc))
        try:
            inner()
        except RuntimeError as exc:
            seen.append(str(exc))
        return seen

    state = suspends(return_state=True)
    assert state.result() == [
        "Flow run cannot be suspended: Cannot suspend flows without a deployment.",
        "Cannot suspend task runs.",
    ]
    run = client.read_flow_run(state.state_details.flow_run_id)
    assert [s.type.value for s in client.read_flow_run_states(run.id)][-1] == "COMPLETED"


# --- send and receive -------------------------------------------------------------------------


def test_receive_input_yields_what_was_sent_in_order_then_stops(client) -> None:
    ids: queue.Queue[UUID] = queue.Queue()

    @flow
    def receiver() -> list[Any]:
        ids.put(_current_run_id())
        return list(receive_input(int, timeout=2, poll_interval=0.1))

    thread, out = _in_thread(receiver)
    run_id = ids.get(timeout=30)
    for n in (3, 1, 2):
        send_input(n, flow_run_id=run_id)
    send_input("not for ints", flow_run_id=run_id)  # another type, another key prefix
    thread.join(30)
    assert out == [[3, 1, 2]]
    stored = client.filter_flow_run_input(run_id, "intautomaticruninput-auto", limit=10)
    assert [json.loads(i.value) for i in stored] == [{"value": 3}, {"value": 1}, {"value": 2}]
    assert all(i.sender is None for i in stored)


def test_a_flow_answers_the_flow_that_sent_it_input(client) -> None:
    class Question(RunInput):
        text: str

    class Reply(RunInput):
        text: str

    ids: queue.Queue[UUID] = queue.Queue()

    @flow
    def answerer() -> str:
        ids.put(_current_run_id())
        question = receive_input(Question, timeout=20, poll_interval=0.1).next()
        question.respond(Reply(text=question.text.upper()))
        return question.metadata.sender or ""

    @flow
    def asker(to: UUID) -> tuple[str, UUID]:
        Question(text="hello").send_to(to)
        reply = next(iter(receive_input(Reply, timeout=20, poll_interval=0.1)))
        return reply.text, _current_run_id()

    thread, out = _in_thread(answerer)
    answerer_id = ids.get(timeout=30)
    text, asker_id = asker(answerer_id)
    thread.join(30)
    assert text == "HELLO"
    assert out == [f"prefect.flow-run.{asker_id}"]


async def test_async_send_and_receive_with_metadata() -> None:
    run_id: list[UUID] = []

    @flow
    async def collector() -> list[tuple[str, str | None]]:
        run_id.append(_current_run_id())
        await asend_input("a", flow_run_id=run_id[0], sender="me")
        await asend_input("b", flow_run_id=run_id[0])
        handler = receive_input(str, timeout=0.5, poll_interval=0.1, with_metadata=True)
        return [(item.value, item.metadata.sender) async for item in handler]

    assert await collector() == [("a", "me"), ("b", f"prefect.flow-run.{run_id[0]}")]


def test_receive_timeouts_and_exclusions() -> None:
    @flow
    def waits() -> list[Any]:
        me = _current_run_id()
        send_input(1, flow_run_id=me)
        send_input(2, flow_run_id=me)
        first = receive_input(int, timeout=0, poll_interval=0.1, raise_timeout_error=True)
        seen = [next(first), next(first)]
        try:
            next(first)
        except TimeoutError as exc:
            seen.append(str(exc))
        keys = first.exclude_keys
        again = receive_input(int, timeout=0, poll_interval=0.1, exclude_keys=set(keys))
        seen.append(list(again))
        return seen

    assert waits() == [1, 2, "Timed out waiting for input", []]


def test_input_actions_read_none_for_missing_and_need_a_run() -> None:
    with pytest.raises(RuntimeError, match="provide a flow run ID or be within a flow run"):
        read_flow_run_input("anything")

    @flow
    def reads() -> Any:
        return read_flow_run_input("missing")

    assert reads() is None


# --- pure parts --------------------------------------------------------------------------------


def test_keysets() -> None:
    assert keyset_from_base_key("x") == {
        "description": "x-description",
        "response": "x-response",
        "schema": "x-schema",
    }
    assert keyset_from_paused_state(Paused(pause_key="7"))["schema"] == "paused-7-schema"
    with pytest.raises(RuntimeError, match="'COMPLETED' is unsupported"):
        keyset_from_paused_state(Completed())
    assert Approval.keyset_from_type()["response"] == "approval-response"


def test_input_classes_for_types() -> None:
    assert run_input_subclass_from_type(Approval) is Approval
    point_input = run_input_subclass_from_type(Point)
    assert issubclass(point_input, RunInput) and issubclass(point_input, Point)
    wrapper = run_input_subclass_from_type(list[int])
    assert issubclass(wrapper, AutomaticRunInput)
    assert wrapper.__name__ == "listAutomaticRunInput"
    assert wrapper(value=["1", 2]).value == [1, 2]  # type: ignore[call-arg, attr-defined]
    assert isinstance(receive_input(Approval, flow_run_id=uuid4()), GetInputHandler)


def test_initial_data_and_description_are_what_the_resumer_sees(client) -> None:
    ids: queue.Queue[UUID] = queue.Queue()
    form = Approval.with_initial_data(description="## Ship **v2**?", note="looks good")
    assert form(approved=True).note == "looks good"

    @flow
    def asks() -> str:
        ids.put(_current_run_id())
        return pause_flow_run(wait_for_input=form, timeout=60, poll_interval=0.2).note

    thread, out = _in_thread(asks)
    run_id = ids.get(timeout=30)
    _wait_paused(client, run_id)
    description = json.loads(client.read_flow_run_input(run_id, "paused-1-description"))
    assert description == "## Ship **v2**?"
    schema = json.loads(client.read_flow_run_input(run_id, "paused-1-schema"))
    assert schema["properties"]["note"]["default"] == "looks good"
    resume_flow_run(run_id, {"approved": True})
    thread.join(30)
    assert out == ["looks good"]


def test_a_pause_inside_a_task_pauses_its_flow_run(client) -> None:
    ids: queue.Queue[UUID] = queue.Queue()

    @task
    def gate() -> int:
        return int(pause_flow_run(wait_for_input=int, timeout=60, poll_interval=0.2))

    @flow
    def gated() -> int:
        ids.put(_current_run_id())
        return gate() * 2

    thread, out = _in_thread(gated)
    run_id = ids.get(timeout=30)
    _wait_paused(client, run_id)
    resume_flow_run(run_id, {"value": 21})
    thread.join(30)
    assert out == [42]


def test_a_suspended_run_leaves_the_process_without_crashing(client) -> None:
    from flowplane.exceptions import Pause

    ids: queue.Queue[UUID] = queue.Queue()

    @flow
    def leaves() -> None:
        ids.put(_current_run_id())
        # What suspend_flow_run raises once the API recorded Suspended (needs a deployment).
        raise Pause("suspended")

    with pytest.raises(Pause):
        leaves()
    run_id = ids.get(timeout=5)
    # The engine did not record Crashed over the suspension (here: the run is left as it was).
    assert client.read_flow_run(run_id).state.type.value == "RUNNING"


async def test_input_actions_sync_and_async() -> None:
    from flowplane.input import (
        acreate_flow_run_input,
        acreate_flow_run_input_from_model,
        adelete_flow_run_input,
        afilter_flow_run_input,
        aread_flow_run_input,
        create_flow_run_input,
        create_flow_run_input_from_model,
        delete_flow_run_input,
        filter_flow_run_input,
    )

    @flow
    def sync_side() -> list[Any]:
        create_flow_run_input("cfg-a", {"n": 1})
        create_flow_run_input_from_model("cfg-b", Point(x=1, y=2))
        found = filter_flow_run_input("cfg-", limit=5)
        handler = receive_input(Point, key_prefix="cfg-b", timeout=0)
        first = handler.filter_for_inputs_sync()
        again = handler.filter_for_inputs_sync()  # already seen
        delete_flow_run_input("cfg-a")
        return [
            [(i.key, i.decoded_value, i.sender) for i in found],
            [i.key for i in first],
            again,
            read_flow_run_input("cfg-a"),
        ]

    keys, first, again, deleted = sync_side()
    assert [k for k, _, _ in keys] == ["cfg-a", "cfg-b"]
    assert keys[0][1] == {"n": 1} and keys[0][2] is None
    assert keys[1][1] == {"x": 1, "y": 2} and keys[1][2].startswith("prefect.flow-run.")
    assert first == ["cfg-b"] and again == [] and deleted is None

    @flow
    async def async_side() -> list[Any]:
        await acreate_flow_run_input("k-1", [1, 2])
        await acreate_flow_run_input_from_model("k-2", Point(x=0, y=0), sender="me")
        found = await afilter_flow_run_input("k-", limit=5, exclude_keys={"k-1"})
        handler = receive_input(list[int], key_prefix="k-1", timeout=0)
        seen = await handler.filter_for_inputs()
        value = await aread_flow_run_input("k-1")
        await adelete_flow_run_input("k-1")
        return [
            [i.key for i in found],
            [i.key for i in seen],
            value,
            await aread_flow_run_input("k-1"),
        ]

    assert await async_side() == [["k-2"], ["k-1"], [1, 2], None]


def test_a_run_cancelled_while_paused_ends_cancelled(client) -> None:
    ids: queue.Queue[UUID] = queue.Queue()

    @flow
    def waits() -> None:
        ids.put(_current_run_id())
        pause_flow_run(timeout=60, poll_interval=0.2)

    thread, out = _in_thread(lambda: waits(return_state=True))
    run_id = ids.get(timeout=30)
    _wait_paused(client, run_id)
    assert client.set_flow_run_state(run_id, {"type": "CANCELLING"}).status.value == "ACCEPT"
    thread.join(30)
    assert out[0].type.value == "CANCELLED"
    assert [s.name for s in client.read_flow_run_states(run_id)] == [
        "Running",
        "Paused",
        "Cancelling",
        "Cancelled",
    ]


async def test_suspending_another_run_is_refused_without_a_deployment(client) -> None:
    from flowplane.flow_runs import asuspend_flow_run

    created = client.create_flow_run(
        client.create_flow_from_name("elsewhere"), state={"type": "RUNNING"}
    )
    with pytest.raises(RuntimeError, match="Cannot suspend flows without a deployment"):
        suspend_flow_run(flow_run_id=created.id, wait_for_input=int)
    with pytest.raises(RuntimeError, match="Cannot suspend flows without a deployment"):
        await asuspend_flow_run(flow_run_id=created.id)
    with pytest.raises(RuntimeError, match="only be suspended from within a flow run"):
        suspend_flow_run()
    assert client.read_flow_run(created.id).state.type.value == "RUNNING"
