"""An acked publish survives SIGKILL of the server; nothing is stored twice."""

from __future__ import annotations

from typing import Any

from tests.server_process import ServerProcess, call_json


def test_acked_publishes_survive_sigkill(server_process: ServerProcess) -> None:
    server_process.start()
    base = server_process.url + "/api/streams"
    call_json(base, "POST", {"name": "orders"})
    call_json(base + "/orders/consumers", "POST", {"name": "c", "filter_key_pattern": ">"})
    batches, size = 20, 250
    acked: dict[str, int] = {}
    for b in range(batches):
        batch = [{"key": f"k.{b}", "data": f"{b}-{i}", "id": f"{b}-{i}"} for i in range(size)]
        result = call_json(base + "/orders/messages", "POST", {"messages": batch})["data"]
        assert result["published"] == size
        acked.update({a["id"]: a["seq"] for a in result["acks"]})
    # an in-flight delivery must survive too
    (delivered,) = call_json(base + "/orders/consumers/c/receive?batch_size=1", "GET")["data"]

    server_process.kill()
    server_process.start()

    stored: list[dict[str, Any]] = []
    after = 0
    for _ in range(batches * size // 1000 + 2):  # bounded paging
        page = call_json(f"{base}/orders/messages?limit=1000&after_seq={after}", "GET")["data"]
        if not page:
            break
        stored.extend(page)
        after = page[-1]["seq"]
    assert len(stored) == batches * size
    assert {m["id"]: m["seq"] for m in stored} == acked
    assert len({m["seq"] for m in stored}) == len(stored)

    # retrying an acked batch after the crash is still idempotent
    retry = [{"key": "k.0", "data": "0-0", "id": "0-0"}]
    result = call_json(base + "/orders/messages", "POST", {"messages": retry})["data"]
    assert result["published"] == 0
    assert result["acks"][0]["seq"] == acked["0-0"]

    consumer = call_json(base + "/orders/consumers/c", "GET")
    assert consumer["stats"]["in_flight"] == 1
    assert consumer["stats"]["pending"] == batches * size - 1
    ack = call_json(base + "/orders/consumers/c/ack", "POST", {"ack_ids": [delivered["ack_id"]]})
    assert ack == {"success": True}
    assert call_json(base + "/orders/consumers/c", "GET")["stats"]["in_flight"] == 0


def test_sigterm_stops_cleanly(server_process: ServerProcess) -> None:
    server_process.start()
    assert server_process.stop() == 0
