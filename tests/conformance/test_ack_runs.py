"""``POST .../messages?acks=runs``: the same acks as an object per message, as runs."""

from __future__ import annotations

from typing import Any

from tests.http_api import Api, msgs


def _expanded(runs: list[list[Any]]) -> list[tuple[int, str]]:
    return [(first + i, committed) for first, length, committed in runs for i in range(length)]


async def _publish_runs(api: Api, messages: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"messages": messages}
    result = await api.ok("POST", "/api/streams/orders/messages", body, params={"acks": "runs"})
    data: dict[str, Any] = result["data"]
    return data


async def test_runs_say_what_the_per_message_acks_say(api: Api) -> None:
    await api.stream("orders")
    first = msgs("a", "b", "c")
    for i, m in enumerate(first):
        m["id"] = f"id-{i}"
    acked = await api.publish("orders", first)
    # Stored whole: one run.
    whole = await _publish_runs(api, msgs("d", "e", "f", "g"))
    assert whole["published"] == 4 and "acks" not in whole
    ((seq, length, _),) = whole["ack_runs"]
    assert (seq, length) == (4, 4)
    # An id seen before breaks the run: it is acked with its first seq and time.
    again = [*msgs("h"), {**first[1]}, *msgs("i")]
    broken = await _publish_runs(api, again)
    assert broken["published"] == 2
    expanded = _expanded(broken["ack_runs"])
    assert [seq for seq, _ in expanded] == [8, 2, 9]
    (per_message,) = (await api.publish("orders", [first[1]]))["acks"]
    assert per_message["seq"] == acked["acks"][1]["seq"] == 2
    assert expanded[1][1] == per_message["committed"]


async def test_an_unknown_ack_form_is_a_bad_param_and_stores_nothing(api: Api) -> None:
    await api.stream("orders")
    status, body = await api.call(
        "POST", "/api/streams/orders/messages", {"messages": msgs("a")}, params={"acks": "all"}
    )
    assert status == 400 and body["param"] == "acks", body
    assert "runs" in body["summary"]
    assert await api.read() == []
