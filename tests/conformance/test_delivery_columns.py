"""``.../receive?deliveries=columns``: the same deliveries as an object per delivery, as columns."""

from __future__ import annotations

from typing import Any

from tests.http_api import Api, msgs

RECEIVE = "/api/streams/orders/consumers/billing/receive"


async def _receive_columns(api: Api, method: str = "GET", **params: int) -> dict[str, Any]:
    result = await api.ok(method, RECEIVE, params={"deliveries": "columns", **params})
    columns: dict[str, Any] = result["data"]
    return columns


def _as_objects(columns: dict[str, Any]) -> list[dict[str, Any]]:
    """The columns as Sequin's objects, for comparison (``updated_at`` and
    ``data_hash`` are not among the columns)."""
    out = []
    for i, ack_id in enumerate(columns["ack_id"]):
        message = {"stream_id": columns["stream_id"]}
        for field in ("seq", "key", "data", "inserted_at", "id", "headers", "encoding"):
            if field in columns and columns[field][i] is not None:
                message[field] = columns[field][i]
        out.append(
            {"ack_id": ack_id, "delivery_count": columns["delivery_count"][i], "message": message}
        )
    return out


async def test_columns_say_what_the_objects_say(api: Api) -> None:
    await api.stream("orders")
    await api.consumer()
    plain = msgs("a.1", "a.2")
    published = [
        *plain,
        {"key": "b.1", "data": "aGk=", "encoding": "base64", "id": "id-b"},
        {"key": "c.1", "data": "{}", "headers": {"content-type": "application/json", "x": "1"}},
    ]
    await api.publish("orders", published)
    columns = await _receive_columns(api, batch_size=2)
    assert set(columns) == {
        "stream_id", "ack_id", "delivery_count", "seq", "key", "data", "inserted_at"
    }  # fmt: skip
    assert columns["key"] == ["a.1", "a.2"] and columns["delivery_count"] == [1, 1]
    # The optional columns come when one delivery of the batch has the field.
    rest = await _receive_columns(api, "POST", batch_size=10)
    assert rest["id"] == ["id-b", None]
    assert rest["encoding"] == ["base64", None]
    assert rest["headers"] == [None, {"content-type": "application/json", "x": "1"}]
    # Given back, the same deliveries come again as objects: the fields agree.
    await api.nack([*columns["ack_id"], *rest["ack_id"]])
    objects = await api.receive(batch_size=10)
    ours = _as_objects(columns) + _as_objects(rest)
    assert [d["message"]["seq"] for d in objects] == [d["message"]["seq"] for d in ours]
    for theirs, mine in zip(objects, ours, strict=True):
        assert theirs["delivery_count"] == 2 and mine["delivery_count"] == 1
        assert {k: theirs["message"].get(k) for k in mine["message"]} == mine["message"]
        assert set(theirs["message"]) - set(mine["message"]) <= {"updated_at", "data_hash"}


async def test_an_empty_receive_is_empty_columns(api: Api) -> None:
    await api.stream("orders")
    await api.consumer()
    columns = await _receive_columns(api)
    assert columns["ack_id"] == [] and columns["data"] == [] and columns["stream_id"] is None


async def test_an_unknown_delivery_form_is_a_bad_param_and_takes_nothing(api: Api) -> None:
    await api.stream("orders")
    await api.consumer()
    await api.publish("orders", msgs("a"))
    status, body = await api.call("GET", RECEIVE, params={"deliveries": "rows"})
    assert status == 400 and body["param"] == "deliveries", body
    assert "columns" in body["summary"]
    assert [d["message"]["key"] for d in await api.receive()] == ["a"]
