"""Concurrency-limit client operations (sync and async) and leases across real processes, against a server subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest
from client_harness import ServerProcess, open_face

from flowplane.exceptions import HTTPStatusError, ObjectAlreadyExists, ObjectNotFound


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.slow
class TestAgainstServer:
    @pytest.mark.parametrize("kind", ["sync", "async"])
    async def test_global_limit_operations(self, server: ServerProcess, kind: str) -> None:
        face, close = await open_face(kind, api_url=server.api_url)
        name = unique("gl")
        try:
            limit_id = await face.create_global_concurrency_limit({"name": name, "limit": 2})
            with pytest.raises(ObjectAlreadyExists):
                await face.create_global_concurrency_limit({"name": name, "limit": 9})
            row = await face.read_global_concurrency_limit_by_name(name)
            assert (row.id, row.limit, row.active_slots) == (limit_id, 2, 0)
            await face.update_global_concurrency_limit(name, {"limit": 3, "active": False})
            row = await face.read_global_concurrency_limit_by_name(str(limit_id))
            assert (row.limit, row.active) == (3, False)
            await face.upsert_global_concurrency_limit_by_name(name, 4)
            other = unique("up")
            await face.upsert_global_concurrency_limit_by_name(other, 1)
            names = {r.name for r in await face.read_global_concurrency_limits(limit=200)}
            assert {name, other} <= names
            assert (await face.read_global_concurrency_limit_by_name(name)).limit == 4
            await face.update_global_concurrency_limit(name, {"active": True})

            taken = await face.increment_concurrency_slots([name], 3)
            assert [t.name for t in taken] == [name]
            with pytest.raises(HTTPStatusError) as full:
                await face.increment_concurrency_slots(name, 2)
            assert full.value.status_code == 423
            await face.release_concurrency_slots(name, 3, occupancy_seconds=0.5)
            assert (await face.read_global_concurrency_limit_by_name(name)).active_slots == 0

            lease = await face.increment_concurrency_slots_with_lease(
                name, 1, lease_duration=60, holder={"type": "flow_run", "id": uuid.uuid4()}
            )
            assert [lim.name for lim in lease.limits] == [name]
            await face.renew_concurrency_lease(lease.lease_id, lease_duration=120)
            await face.release_concurrency_slots_with_lease(lease.lease_id)
            with pytest.raises(HTTPStatusError) as gone:
                await face.renew_concurrency_lease(lease.lease_id)
            assert gone.value.status_code == 410
            assert (await face.read_global_concurrency_limit_by_name(name)).active_slots == 0

            await face.delete_global_concurrency_limit_by_name(name)
            with pytest.raises(ObjectNotFound):
                await face.read_global_concurrency_limit_by_name(name)
            with pytest.raises(ObjectNotFound):
                await face.delete_global_concurrency_limit_by_name(name)
        finally:
            await close()

    @pytest.mark.parametrize("kind", ["sync", "async"])
    async def test_tag_limit_operations(self, server: ServerProcess, kind: str) -> None:
        face, close = await open_face(kind, api_url=server.api_url)
        tag = unique("tag")
        try:
            limit_id = await face.create_concurrency_limit(tag, 1)
            assert await face.create_concurrency_limit(tag, 2) == limit_id  # an update
            run_a, run_b = uuid.uuid4(), uuid.uuid4()
            assert [m.name for m in await face.increment_v1_concurrency_slots([tag], run_a)] == [
                tag
            ]
            row = await face.read_concurrency_limit_by_tag(tag)
            assert (row.concurrency_limit, row.active_slots) == (2, [run_a])
            await face.increment_v1_concurrency_slots([tag], run_b)
            with pytest.raises(HTTPStatusError) as full:
                await face.increment_v1_concurrency_slots([tag], uuid.uuid4())
            assert full.value.status_code == 423
            await face.decrement_v1_concurrency_slots([tag], run_a, 1.0)
            assert (await face.read_concurrency_limit_by_tag(tag)).active_slots == [run_b]
            await face.reset_concurrency_limit_by_tag(tag, slot_override=[run_a])
            assert (await face.read_concurrency_limit_by_tag(tag)).active_slots == [run_a]
            await face.reset_concurrency_limit_by_tag(tag)
            assert (await face.read_concurrency_limit_by_tag(tag)).active_slots == []
            assert tag in {r.tag for r in await face.read_concurrency_limits(limit=200)}
            await face.delete_concurrency_limit_by_tag(tag)
            with pytest.raises(ObjectNotFound):
                await face.read_concurrency_limit_by_tag(tag)
            with pytest.raises(ObjectNotFound):
                await face.reset_concurrency_limit_by_tag(tag)
        finally:
            await close()

    def test_a_killed_holder_loses_its_slot_when_the_lease_expires(
        self, server: ServerProcess, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``kill -9`` a process inside ``concurrency()``: nobody releases, the lease lapses, a waiter gets in.

        Leases last at least 60 s, so this test waits about a minute of real time.
        """
        from flowplane.client import get_client
        from flowplane.concurrency.sync import concurrency

        name = unique("kill")
        monkeypatch.setenv("FLOWPLANE_API_URL", server.api_url)
        with get_client(sync_client=True, api_url=server.api_url) as client:
            client.create_global_concurrency_limit({"name": name, "limit": 1})
        holder_code = textwrap.dedent(
            f"""
            import time
            from flowplane.concurrency.sync import concurrency
            with concurrency({name!r}, lease_duration=60):
                print("held", flush=True)
                time.sleep(600)
            """
        )
        env = {**os.environ, "FLOWPLANE_API_URL": server.api_url}
        holder = subprocess.Popen(
            [sys.executable, "-c", holder_code], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            with get_client(sync_client=True, api_url=server.api_url) as client:
                assert client.read_global_concurrency_limit_by_name(name).active_slots == 1
            with pytest.raises(TimeoutError):
                with concurrency(name, timeout_seconds=0.5):
                    pytest.fail("entered while the holder lives")
            os.kill(holder.pid, signal.SIGKILL)
            assert holder.wait(30) == -signal.SIGKILL
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait(30)
            if holder.stdout is not None:
                holder.stdout.close()

        entered: list[float] = []
        killed_at = time.monotonic()

        def waiter() -> None:
            with concurrency(name, timeout_seconds=180):
                entered.append(time.monotonic() - killed_at)

        thread = threading.Thread(target=waiter)
        thread.start()
        thread.join(200)
        assert entered, "the dead holder's slot was never freed"
        with get_client(sync_client=True, api_url=server.api_url) as client:
            assert client.read_global_concurrency_limit_by_name(name).active_slots == 0
