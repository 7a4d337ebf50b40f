"""``flowplane concurrency-limit`` and ``global-concurrency-limit`` as real subprocesses on the embedded API."""

from __future__ import annotations

import uuid

from cli_harness import ok, ok_json, one_line_error


def seed_holder(tag: str) -> uuid.UUID:
    """A task run holding a slot on the tag's limit (through the v1 API, as older clients do)."""
    from flowplane.client import get_client

    run_id = uuid.uuid4()
    with get_client(sync_client=True) as client:
        client.increment_v1_concurrency_slots([tag], run_id)
    return run_id


def test_tag_limit_lifecycle() -> None:
    out = ok("concurrency-limit", "create", "etl", "2")
    assert "'etl'" in out and "concurrency_limit - 2" in out
    holder = seed_holder("etl")
    listed = ok_json("concurrency-limit", "ls")
    assert [(row["tag"], row["concurrency_limit"]) for row in listed] == [("etl", 2)]
    assert listed[0]["active_slots"] == [str(holder)]
    table = ok("concurrency-limit", "inspect", "etl")
    assert "concurrency limit: 2" in table and str(holder) in table
    assert "Reset" in ok("concurrency-limit", "reset", "etl")
    assert ok_json("concurrency-limit", "inspect", "etl")["active_slots"] == []
    assert "Deleted" in ok("concurrency-limit", "delete", "etl")
    assert "No concurrency limits found." in ok("concurrency-limit", "ls")


def test_tag_limit_errors_are_one_line_and_change_nothing() -> None:
    assert "'ghost'" in one_line_error("concurrency-limit", "inspect", "ghost")
    assert "'ghost'" in one_line_error("concurrency-limit", "delete", "ghost")
    assert "'ghost'" in one_line_error("concurrency-limit", "reset", "ghost")
    assert "0 or more" in one_line_error("concurrency-limit", "create", "etl", "--", "-1")
    assert one_line_error("concurrency-limit", "ls", "-o", "yaml").startswith("Error:")
    assert ok_json("concurrency-limit", "ls") == []


def test_global_limit_lifecycle() -> None:
    out = ok(
        "global-concurrency-limit",
        "create",
        "api",
        "--limit",
        "3",
        "--slot-decay-per-second",
        "0.5",
    )
    assert "'api'" in out
    row = ok_json("global-concurrency-limit", "inspect", "api")
    assert (row["limit"], row["active"], row["slot_decay_per_second"]) == (3, True, 0.5)
    ok(
        "global-concurrency-limit",
        "update",
        "api",
        "-l",
        "5",
        "--active-slots",
        "2",
        "--slot-decay-per-second",
        "0",
    )  # no decay from here, so the slots stay put
    ok("global-concurrency-limit", "disable", "api")
    row = ok_json("global-concurrency-limit", "inspect", "api")
    assert (row["limit"], row["active"], row["active_slots"]) == (5, False, 2)
    ok("global-concurrency-limit", "enable", "api")
    listed = ok_json("global-concurrency-limit", "ls")
    assert [(r["name"], r["active"]) for r in listed] == [("api", True)]
    assert "Deleted" in ok("global-concurrency-limit", "delete", "api", "--yes")
    assert ok_json("global-concurrency-limit", "ls") == []


def test_global_limit_errors_are_one_line_and_change_nothing() -> None:
    ok("global-concurrency-limit", "create", "db", "-l", "1")
    assert "already exists" in one_line_error("global-concurrency-limit", "create", "db", "-l", "4")
    assert "No update" in one_line_error("global-concurrency-limit", "update", "db")
    assert "same time" in one_line_error(
        "global-concurrency-limit", "update", "db", "--enable", "--disable"
    )
    assert "'nope'" in one_line_error("global-concurrency-limit", "enable", "nope")
    assert "'nope'" in one_line_error("global-concurrency-limit", "delete", "nope", "--yes")
    one_line_error("global-concurrency-limit", "create", "bad/name", "-l", "1")
    row = ok_json("global-concurrency-limit", "inspect", "db")
    assert (row["limit"], row["active"]) == (1, True)
