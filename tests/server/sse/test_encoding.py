"""The server's SSE encoding and tail parameters, read back with the client's parser."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from streamkit._http.sse_parser import ServerSentEvent, SSEParser
from streamkit.server import sse
from streamkit.server.store.base import Message
from streamkit.server.validation import BadParam

NOW = datetime(2024, 7, 1, 12, 0, tzinfo=timezone.utc)


def message(seq: int, key: str = "orders.eu.7", data: str = '{"total":12.5}') -> Message:
    m: Message = {
        "key": key,
        "stream_id": "6f1c",
        "data": data,
        "data_hash": "h",
        "seq": seq,
        "inserted_at": NOW,
        "updated_at": NOW,
    }
    return m


def test_exact_wire_format() -> None:
    raw = sse.encode_messages([message(42)])
    assert raw == (
        b"id: 42\n"
        b"event: orders.eu.7\n"
        b'data: {"key":"orders.eu.7","stream_id":"6f1c","data":"{\\"total\\":12.5}",'
        b'"data_hash":"h","seq":42,"inserted_at":"2024-07-01T12:00:00Z",'
        b'"updated_at":"2024-07-01T12:00:00Z"}\n'
        b"\n"
    )


def test_unnamed_events_leave_out_the_event_line() -> None:
    raw = sse.encode_messages([message(1)], named=False)
    assert raw.startswith(b"id: 1\ndata: {") and b"event:" not in raw


def test_payload_newlines_stay_on_one_data_line() -> None:
    tricky = "line1\nline2\r\nline3\r: not a comment\n\ndata: x"
    raw = sse.encode_messages([message(1, data=tricky), message(2)])
    events = SSEParser().feed(raw)
    assert [e.id for e in events] == ["1", "2"]
    assert orjson.loads(events[0].data)["data"] == tricky
    assert raw.count(b"\n\n") == 2


def test_preamble_sets_cursor_without_dispatching() -> None:
    parser = SSEParser()
    assert parser.feed(sse.preamble(17, 1000)) == []
    assert (parser.last_event_id, parser.retry) == ("17", 1000)
    assert sse.preamble(0, None) == b"id: 0\n\n"


def test_keepalive_is_a_comment() -> None:
    parser = SSEParser()
    assert parser.feed(sse.KEEPALIVE * 3) == []
    assert parser.comments == 3


def test_encode_event_splits_multiline_data() -> None:
    raw = sse.encode_event("a\nb\r\nc", id="5", event="note", retry_ms=10)
    assert raw == b"retry: 10\nid: 5\nevent: note\ndata: a\ndata: b\ndata: c\n\n"
    assert SSEParser().feed(raw) == [ServerSentEvent("a\nb\nc", "note", "5")]


@pytest.mark.parametrize("bad", [{"id": "1\n2"}, {"id": "1\x002"}, {"event": "a\rb"}])
def test_encode_event_rejects_fields_that_break_lines(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sse.encode_event("x", **bad)


# -- parameters -------------------------------------------------------------------


def test_default_starts_at_the_end() -> None:
    params = sse.tail_params({}, {})
    assert params == sse.TailParams(after_seq=None, key_pattern=None, named=True)


def test_from_seq_is_inclusive() -> None:
    assert sse.tail_params({"from_seq": "10"}, {}).after_seq == 9
    assert sse.tail_params({"from_seq": "0"}, {}).after_seq == 0
    assert sse.tail_params({"from_seq": "1"}, {}).after_seq == 0


def test_last_event_id_query_is_exclusive() -> None:
    assert sse.tail_params({"last_event_id": "10"}, {}).after_seq == 10


def test_header_wins_over_the_query() -> None:
    # A browser reconnects with its first URL (from_seq=1) and the header.
    query = {"from_seq": "1", "last_event_id": "3"}
    assert sse.tail_params(query, {"Last-Event-ID": "25"}).after_seq == 25
    assert sse.tail_params(query, {"Last-Event-ID": " "}).after_seq == 3


def test_key_pattern_and_event_naming() -> None:
    params = sse.tail_params({"key_pattern": "orders.*.7", "event": "message"}, {})
    assert (params.key_pattern, params.named) == ("orders.*.7", False)


@pytest.mark.parametrize(
    ("query", "headers", "param"),
    [
        ({"from_seq": "-1"}, {}, "from_seq"),
        ({"from_seq": "x"}, {}, "from_seq"),
        ({"last_event_id": "1.5"}, {}, "last_event_id"),
        ({}, {"Last-Event-ID": "abc"}, "Last-Event-ID"),
        ({"key_pattern": "orders..x"}, {}, "key_pattern"),
        ({"key_pattern": "orders.>\n"}, {}, "key_pattern"),
        ({"event": "name"}, {}, "event"),
    ],
)
def test_bad_parameters(query: dict[str, str], headers: dict[str, str], param: str) -> None:
    with pytest.raises(BadParam) as info:
        sse.tail_params(query, headers)
    assert info.value.param == param


def test_a_message_stored_without_its_hash_is_sent_with_it() -> None:
    m = message(7, data="ü")
    del m["data_hash"]
    (block,) = sse.encode_messages([m]).split(b"\n\n")[:1]
    sent = orjson.loads(block.split(b"data: ", 1)[1])
    assert sent["data_hash"] == base64.b64encode(hashlib.sha256("ü".encode()).digest()).decode()
