"""Finding the first message at or after a time on JetStream: the direct get by
``start_time``, and the binary search used when a server does not know that field."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from streamkit.server.store.base import Message, MessageQuery, StreamOptions
from streamkit.server.store.jetstream.codec import datetime_to_ns
from streamkit.server.store.jetstream.store import JetStreamStore
from tests.nats_server import NatsServer


def _first_at(messages: list[Message], when: datetime) -> int | None:
    return next((m["seq"] for m in messages if m["inserted_at"] >= when), None)


async def test_direct_get_and_binary_search_agree(nats_server: NatsServer) -> None:
    store = JetStreamStore(nats_server.url)
    await store.open()
    try:
        await store.create_stream("orders", StreamOptions())
        for batch in range(5):  # 5 atomic batches of 3, a few ms apart
            await store.publish("orders", [{"key": f"k.{batch}", "data": str(i)} for i in range(3)])
            await asyncio.sleep(0.01)
        messages = await store.read_messages("orders", MessageQuery(limit=100))
        assert [m["seq"] for m in messages] == list(range(1, 16))
        reader, handle = store._reader, await store._cat.stream("orders")
        assert reader is not None
        moments = [
            m["inserted_at"] + delta
            for m in messages
            for delta in (timedelta(0), timedelta(microseconds=1))
        ]
        moments += [messages[0]["inserted_at"] - timedelta(days=1)]
        moments += [messages[-1]["inserted_at"] + timedelta(seconds=1)]
        for when in moments:
            want = _first_at(messages, when)
            assert await reader.first_seq_at(handle, when) == want, when
            assert await reader._search_time(handle, datetime_to_ns(when)) == want, when
        assert _first_at(messages, moments[-1]) is None  # the search can answer "none"
    finally:
        await store.close()
