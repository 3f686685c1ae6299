"""The limits in protocol.wire are the ones the server enforces and documents."""

from __future__ import annotations

from typing import Any

from streamkit.protocol import wire
from streamkit.server import openapi
from tests.http_api import Api


def _schema(name: str) -> dict[str, Any]:
    return openapi.SCHEMAS[name]


def test_the_document_states_the_wire_limits() -> None:
    assert _schema("PublishRequest")["properties"]["messages"]["maxItems"] == wire.MAX_BATCH
    assert _schema("AckIds")["properties"]["ack_ids"]["maxItems"] == wire.MAX_ACK_IDS


async def test_the_server_takes_a_full_batch_and_no_more(api: Api) -> None:
    await api.ok("POST", "/api/streams", {"name": "limits"})
    full = [{"key": "k", "data": "x"}] * wire.MAX_BATCH
    assert (await api.ok("POST", "/api/streams/limits/messages", {"messages": full}))["data"][
        "published"
    ] == wire.MAX_BATCH
    status, _ = await api.call(
        "POST", "/api/streams/limits/messages", {"messages": [*full, full[0]]}
    )
    assert status == 422


async def test_the_server_takes_ack_ids_up_to_the_limit(api: Api) -> None:
    await api.ok("POST", "/api/streams", {"name": "acks"})
    await api.ok("POST", "/api/streams/acks/consumers", {"name": "c", "filter_key_pattern": ">"})
    ids = [f"{n}.x" for n in range(wire.MAX_ACK_IDS)]
    path = "/api/streams/acks/consumers/c/ack"
    assert await api.ok("POST", path, {"ack_ids": ids}) == {"success": True}
    status, _ = await api.call("POST", path, {"ack_ids": [*ids, "0.y"]})
    assert status == 422
