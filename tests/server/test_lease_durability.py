"""Deliveries held in leases (one row per receive) survive SIGKILL of the server like
per-message ones: a confirmed ack stays done, an unacked delivery comes back."""

from __future__ import annotations

from typing import Any

from tests.faults.integrity import check_db
from tests.server_process import ServerProcess, call_json


def _seq(delivery: dict[str, Any]) -> int:
    return int(delivery["message"]["seq"])


def test_killed_between_delivery_and_ack(server_process: ServerProcess) -> None:
    server_process.start()
    base = server_process.url + "/api/streams/orders"
    call_json(server_process.url + "/api/streams", "POST", {"name": "orders"})
    call_json(base + "/consumers", "POST", {"name": "slow", "filter_key_pattern": ">"})
    call_json(
        base + "/consumers",
        "POST",
        {"name": "quick", "filter_key_pattern": "orders.a", "ack_wait_ms": 200},
    )
    batch = [{"key": f"orders.{'ab'[i % 2]}", "data": str(i)} for i in range(100)]
    call_json(base + "/messages", "POST", {"messages": batch})

    first = call_json(base + "/consumers/slow/receive?batch_size=50", "GET")["data"]
    second = call_json(base + "/consumers/slow/receive?batch_size=30", "GET")["data"]
    acked = first[:20]
    ack_ids = [d["ack_id"] for d in acked]
    assert call_json(base + "/consumers/slow/ack", "POST", {"ack_ids": ack_ids})
    # a filtered consumer's batch is not one run of seqs
    quick = call_json(base + "/consumers/quick/receive?batch_size=10", "GET")["data"]
    assert [_seq(d) for d in quick] == list(range(1, 20, 2))
    call_json(base + "/consumers/quick/ack", "POST", {"ack_ids": [d["ack_id"] for d in quick[:4]]})

    server_process.kill()
    check_db(server_process.db).assert_ok()
    server_process.start()

    stats = call_json(base + "/consumers/slow", "GET")["stats"]
    assert (stats["in_flight"], stats["pending"]) == (60, 20)
    # ack ids handed out before the crash still work; acking twice changes nothing
    again = first[20:30]
    for _ in range(2):
        call_json(base + "/consumers/slow/ack", "POST", {"ack_ids": [d["ack_id"] for d in again]})
    rest = first[30:] + second
    call_json(base + "/consumers/slow/nack", "POST", {"ack_ids": [d["ack_id"] for d in rest]})
    redelivered = call_json(base + "/consumers/slow/receive?batch_size=100", "GET")["data"]
    assert sorted(_seq(d) for d in redelivered) == sorted(_seq(d) for d in rest) + list(
        range(81, 101)
    )
    assert {d["delivery_count"] for d in redelivered if _seq(d) <= 80} == {2}
    call_json(base + "/consumers/slow/ack", "POST", {"ack_ids": [d["ack_id"] for d in redelivered]})
    stats = call_json(base + "/consumers/slow", "GET")["stats"]
    assert (stats["in_flight"], stats["pending"]) == (0, 0)

    # past ack_wait, what was never acked comes back, even across the restart
    back: list[dict[str, Any]] = []
    while len(back) < 6:
        got = call_json(base + "/consumers/quick/receive?batch_size=6&wait_for=5000", "GET")["data"]
        assert got, "the unacked deliveries did not come back"
        back.extend(d for d in got if d["delivery_count"] > 1)
    assert sorted(_seq(d) for d in back) == [_seq(d) for d in quick[4:]]
    server_process.stop()
    check_db(server_process.db).assert_ok()
