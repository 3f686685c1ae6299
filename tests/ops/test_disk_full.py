"""A full disk (a real tmpfs): 507 storage_full with Retry-After, nothing stored in part,
reads and health keep answering, recovery without a restart, and no wedge across one."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import streamkit
from streamkit import Event
from streamkit._http.retry import retriable
from streamkit._http.transport import api_error
from tests.ops.disk import ballast, small_disk
from tests.ops.http import all_messages, call
from tests.server_process import ServerProcess

BATCH = 100
DATA = "x" * 1000
MAX_BATCHES = 400  # 8 MiB hold fewer than 80,000 such events: the fill loop ends long before
FLOOD = 30
RECOVERY_BOUND = 15.0  # seconds: a bound that says "by itself", not a speed claim


@pytest.fixture
def disk(tmp_path: Path) -> Any:
    with small_disk(tmp_path / "disk") as where:
        yield where


class Publisher:
    """Publishes numbered batches with ids; remembers what was acked."""

    def __init__(self, server: ServerProcess, stream: str) -> None:
        self.server = server
        self.stream = stream
        self.acked: set[str] = set()
        self.batches = 0

    def batch(self, size: int = BATCH) -> tuple[int, dict[str, str], Any]:
        self.batches += 1
        ids = [f"b{self.batches}-{i}" for i in range(size)]
        body = {"messages": [{"key": "orders.eu", "data": DATA, "id": i} for i in ids]}
        status, headers, reply = call(
            self.server.url, "POST", f"/api/streams/{self.stream}/messages", body
        )
        if status == 200:
            assert reply["data"]["published"] == size
            self.acked.update(ids)
        return status, headers, reply

    def fill(self, size: int = BATCH) -> tuple[int, dict[str, str], Any]:
        """Publish batches of ``size`` until the first refusal; returns it."""
        for _ in range(MAX_BATCHES):
            status, headers, reply = self.batch(size)
            if status != 200:
                return status, headers, reply
        raise AssertionError(f"{MAX_BATCHES} batches and the disk is not full")

    def until_accepted(self) -> float:
        """Seconds until a batch is stored again (retrying as told by Retry-After)."""
        start = time.monotonic()
        while time.monotonic() - start < RECOVERY_BOUND:
            status, headers, reply = self.batch()
            if status == 200:
                return time.monotonic() - start
            assert_storage_full(status, headers, reply)
            time.sleep(0.2)
        raise AssertionError(f"no publish accepted {RECOVERY_BOUND}s after space came back")


def assert_storage_full(status: int, headers: dict[str, str], reply: Any) -> None:
    assert status == 507, (status, reply)
    assert reply["code"] == "storage_full" and reply["summary"], reply
    assert int(headers["Retry-After"]) > 0


def assert_admin_writes_refused(server: ServerProcess) -> None:
    for path, body in (
        ("/api/streams/orders/consumers", {"name": "c{}", "filter_key_pattern": ">"}),
        ("/api/streams", {"name": "s{}"}),
    ):
        for i in range(MAX_BATCHES):
            named = {**body, "name": str(body["name"]).format(i)}
            status, headers, reply = call(server.url, "POST", path, named)
            if status != 201:
                assert_storage_full(status, headers, reply)
                break
        else:
            raise AssertionError(f"{MAX_BATCHES} POST {path} and the disk is not full")


def assert_all_acked_stored_once(server: ServerProcess, publisher: Publisher) -> None:
    stored = [m["id"] for m in all_messages(server.url, publisher.stream)]
    assert len(stored) == len(set(stored)), "an id stored twice"
    assert set(stored) == publisher.acked, "a refused batch left messages, or an acked one is gone"


def wait_health(server: ServerProcess, status: str) -> tuple[float, Any]:
    start = time.monotonic()
    while time.monotonic() - start < RECOVERY_BOUND:
        code, _, body = call(server.url, "GET", "/health")
        assert code == 200, body
        if body["status"] == status:
            return time.monotonic() - start, body
        time.sleep(0.1)
    raise AssertionError(f"/health not {status!r} within {RECOVERY_BOUND}s: {body}")


def test_a_full_disk_refuses_writes_cleanly_and_recovers_by_itself(
    disk: Path, tmp_path: Path
) -> None:
    spare = ballast(disk / "ballast", 3)
    server = ServerProcess(disk / "s.db", log=tmp_path / "server.log")
    server.start()
    try:
        assert call(server.url, "POST", "/api/streams", {"name": "orders"})[0] == 201
        consumer = {"name": "billing", "filter_key_pattern": ">"}
        assert call(server.url, "POST", "/api/streams/orders/consumers", consumer)[0] == 201
        publisher = Publisher(server, "orders")
        assert publisher.batch()[0] == 200
        receive = "/api/streams/orders/consumers/billing/receive?batch_size=5"
        status, _, got = call(server.url, "GET", receive)
        assert status == 200 and len(got["data"]) == 5

        assert_storage_full(*publisher.fill())
        for _ in range(FLOOD):  # flooded while full: every one refused the same way
            assert_storage_full(*publisher.batch())
        # Small admin writes fit in the last free pages for a while, then get 507 too.
        assert_admin_writes_refused(server)

        # Reads, metrics keep answering; an ack is taken or refused cleanly.
        assert call(server.url, "GET", "/api/streams/orders")[0] == 200
        assert_all_acked_stored_once(server, publisher)
        ack_ids = [d["ack_id"] for d in got["data"]]
        ack = "/api/streams/orders/consumers/billing/ack"
        status, _, reply = call(server.url, "POST", ack, {"ack_ids": ack_ids})
        assert status in (200, 507), reply
        assert_storage_full(*publisher.batch())
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
            assert response.status == 200
            assert b"\nstreamkit_storage_degraded 1" in response.read()
        code, _, health = call(server.url, "GET", "/health")
        assert code == 200 and health["status"] == "degraded", health
        assert health["reason"].startswith("storage_full"), health
        time.sleep(2.5)  # recovery rounds pass: still degraded, as the disk is still full
        assert call(server.url, "GET", "/health")[2]["status"] == "degraded"

        spare.unlink()
        recovered, _ = wait_health(server, "ok")  # no client write needed
        print(f"health ok {recovered:.2f}s after space came back")
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
            assert b"\nstreamkit_storage_degraded 0" in response.read()
        assert publisher.until_accepted() < RECOVERY_BOUND
        second = {"name": "audit", "filter_key_pattern": ">"}
        assert call(server.url, "POST", "/api/streams/orders/consumers", second)[0] == 201
        assert_all_acked_stored_once(server, publisher)
    finally:
        assert server.stop() == 0, server.log_text()


def test_recovery_when_the_wal_holds_the_data_and_across_restarts(
    disk: Path, tmp_path: Path
) -> None:
    spare = ballast(disk / "ballast", 4)
    last = ballast(disk / "last", 1)
    server = ServerProcess(disk / "s.db", log=tmp_path / "server.log")
    server.start()
    try:
        assert call(server.url, "POST", "/api/streams", {"name": "orders"})[0] == 201
        publisher = Publisher(server, "orders")
        # A reader holding a snapshot stops checkpoints: everything lands in the WAL.
        pin = sqlite3.connect(disk / "s.db")
        pin.execute("BEGIN")
        pin.execute("SELECT count(*) FROM messages").fetchone()
        try:
            assert_storage_full(*publisher.fill())
        finally:
            pin.close()
        wal = disk / "s.db-wal"
        full_wal = wal.stat().st_size
        assert full_wal > (disk / "s.db").stat().st_size, "the WAL should hold most of the data"
        spare.unlink()
        took = publisher.until_accepted()
        print(f"publishing again {took:.2f}s after space came back (WAL {full_wal} bytes)")
        for _ in range(10):  # and it goes on: the WAL's data went to the database
            assert publisher.batch()[0] == 200

        # Full again, then restarted while full: it starts, serves reads, refuses writes.
        assert_storage_full(*publisher.fill())
        server.kill()
        server.start()
        assert_all_acked_stored_once(server, publisher)
        assert_storage_full(*publisher.batch())
        server.stop()
        server.start()
        assert_all_acked_stored_once(server, publisher)
        last.unlink()
        assert publisher.until_accepted() < RECOVERY_BOUND
        assert_all_acked_stored_once(server, publisher)
    finally:
        assert server.stop() == 0, server.log_text()


async def test_the_client_retries_a_full_disk_until_space_comes_back(
    disk: Path, tmp_path: Path
) -> None:
    spare = ballast(disk / "ballast", 3)
    server = ServerProcess(disk / "s.db", log=tmp_path / "server.log")
    await server.astart()
    try:
        await asyncio.to_thread(call, server.url, "POST", "/api/streams", {"name": "orders"})
        publisher = Publisher(server, "orders")
        for size in (BATCH, 10, 1):  # to the brim: not even one more event fits
            assert_storage_full(*await asyncio.to_thread(publisher.fill, size))
        nacks: list[streamkit.Nack] = []
        async with streamkit.connect(server.url, retries=0) as client:
            events = [Event(DATA, id=f"client-{i}") for i in range(200)]
            await client.publish("orders", *events, on_nack=nacks.append)
            await asyncio.sleep(1.5)  # retried meanwhile, as Retry-After says
            assert not any(e.acked for e in events)
            spare.unlink()
            await client.flush(timeout=RECOVERY_BOUND + 10)
        assert not nacks, nacks[:3]
        stored = {m["id"] for m in await asyncio.to_thread(all_messages, server.url, "orders")}
        assert {e.id for e in events} <= stored
    finally:
        assert server.stop() == 0, server.log_text()


def test_507_is_a_retryable_storage_full_error() -> None:
    error = api_error(507, b'{"summary": "Insufficient storage", "code": "storage_full"}', "2")
    assert isinstance(error, streamkit.StorageFull) and isinstance(error, streamkit.Overloaded)
    assert error.code == "storage_full" and error.retry_after == 2.0
    assert retriable(error)


def test_jetstream_insufficient_resources_are_storage_full() -> None:
    pytest.importorskip("nats")
    from streamkit.server.store.base import StoreFull
    from streamkit.server.store.jetstream.conn import api_error as js_api_error

    for err_code in (10023, 10028, 10047):
        body = {"error": {"code": 500, "err_code": err_code, "description": "insufficient"}}
        assert isinstance(js_api_error(body), StoreFull), err_code
    other = js_api_error({"error": {"code": 404, "err_code": 10059, "description": "not found"}})
    assert other is not None and not isinstance(other, StoreFull)
