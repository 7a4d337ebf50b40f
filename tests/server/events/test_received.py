"""``Event.receive``: the received event equals the one validation would build, without revalidating."""

from __future__ import annotations

import datetime as dt
import uuid

from flowplane.schemas.events import Event, ReceivedEvent

WHEN = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.timezone.utc)


def test_receive_matches_a_validated_received_event() -> None:
    event = Event(
        event="thing.happened",
        resource={"prefect.resource.id": "thing.1", "label": "x"},
        related=[{"prefect.resource.id": "other.1", "prefect.resource.role": "r"}],
        payload={"n": 1},
        follows=uuid.uuid4(),
    )
    received = event.receive(WHEN)
    expected = ReceivedEvent(**event.model_dump(), received=WHEN)
    assert type(received) is ReceivedEvent
    assert received == expected
    assert received.model_dump(mode="json") == expected.model_dump(mode="json")
    assert received.model_fields_set == event.model_fields_set | {"received"}
    assert received.model_dump(exclude_unset=True) == {
        **event.model_dump(exclude_unset=True),
        "received": WHEN,
    }


def test_receive_defaults_to_now_and_can_be_received_again() -> None:
    before = dt.datetime.now(dt.timezone.utc)
    received = Event(event="x", resource={"prefect.resource.id": "a"}).receive()
    assert received.received >= before
    assert received.receive(WHEN).received == WHEN
    assert received.received != WHEN
