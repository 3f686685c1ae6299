"""The client's incremental SSE parser against the WHATWG event stream rules."""

from __future__ import annotations

import pytest

from streamkit._http.sse_parser import ServerSentEvent, SSEParser


def parse(*chunks: bytes) -> tuple[list[ServerSentEvent], SSEParser]:
    parser = SSEParser()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events, parser


def test_one_event_with_every_field() -> None:
    events, parser = parse(b'retry: 2500\nid: 7\nevent: orders.eu.7\ndata: {"a":1}\n\n')
    assert events == [ServerSentEvent('{"a":1}', "orders.eu.7", "7")]
    assert parser.retry == 2500
    assert parser.last_event_id == "7"


def test_default_event_type_is_message() -> None:
    events, _ = parse(b"data: hello\n\n")
    assert events == [ServerSentEvent("hello", "message", "")]


def test_multi_line_data_joins_with_newlines() -> None:
    events, _ = parse(b"data: first\ndata:second\ndata:  third\ndata\n\n")
    assert [e.data for e in events] == ["first\nsecond\n third\n"]


def test_only_one_space_after_the_colon_is_removed() -> None:
    events, _ = parse(b"data:  two spaces\n\n", b"data:none\n\n")
    assert [e.data for e in events] == [" two spaces", "none"]


def test_value_may_contain_colons() -> None:
    events, _ = parse(b'data: {"k": "a:b"}\n\n')
    assert events[0].data == '{"k": "a:b"}'


def test_comments_are_ignored_and_counted() -> None:
    events, parser = parse(b": keepalive\n\n:another\ndata: x\n: mid-event\n\n")
    assert [e.data for e in events] == ["x"]
    assert parser.comments == 3


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(end: bytes) -> None:
    stream = b"id: 1" + end + b"event: k" + end + b"data: a" + end + b"data: b" + end + end
    events, _ = parse(stream)
    assert events == [ServerSentEvent("a\nb", "k", "1")]


def test_mixed_line_endings() -> None:
    events, _ = parse(b"data: a\rdata: b\r\ndata: c\n\r\n")
    assert [e.data for e in events] == ["a\nb\nc"]


def test_every_split_point_gives_the_same_events() -> None:
    stream = (
        '\ufeffretry: 10\r\nid: 1\r\nevent: orders.é\r\ndata: {"t": "é€😀"}\r\n\r\n'
        ": keepalive\r\r"
        "id: 2\rdata: line1\rdata: line2\r\r"
        "id: 3\ndata: x\n\n"
    ).encode()
    whole, _ = parse(stream)
    assert [(e.id, e.event, e.data) for e in whole] == [
        ("1", "orders.é", '{"t": "é€😀"}'),
        ("2", "message", "line1\nline2"),
        ("3", "message", "x"),
    ]
    for i in range(len(stream) + 1):
        split, _ = parse(stream[:i], stream[i:])
        assert split == whole, i


def test_byte_at_a_time() -> None:
    stream = "id: 9\r\ndata: ünïcode\r\n\r\n".encode()
    events, _ = parse(*(stream[i : i + 1] for i in range(len(stream))))
    assert events == [ServerSentEvent("ünïcode", "message", "9")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # "data: a\r" then "\n\r\n": the LF after a CR at a chunk's end is the same line end.
    events, _ = parse(b"data: a\r", b"\n\r\n")
    assert [e.data for e in events] == ["a"]
    events, _ = parse(b"data: a\r", b"\n", b"data: b\r", b"\n\r", b"\n")
    assert [e.data for e in events] == ["a\nb"]


def test_leading_bom_is_skipped_once() -> None:
    events, _ = parse(b"\xef\xbb", b"\xbfdata: x\n\n")
    assert [e.data for e in events] == ["x"]
    events, _ = parse(b"data: \xef\xbb\xbfx\n\n")
    assert [e.data for e in events] == ["\ufeffx"]


def test_blank_line_without_data_dispatches_nothing_but_commits_the_id() -> None:
    events, parser = parse(b"retry: 1000\nid: 41\n\n")
    assert events == []
    assert parser.last_event_id == "41"
    events = parser.feed(b"data: next\n\n")
    assert events == [ServerSentEvent("next", "message", "41")]


def test_an_event_type_without_data_is_dropped() -> None:
    events, _ = parse(b"event: lonely\n\ndata: x\n\n")
    assert events == [ServerSentEvent("x", "message", "")]


def test_id_persists_across_events_and_can_be_reset() -> None:
    events, parser = parse(b"id: 5\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")
    assert [e.id for e in events] == ["5", "5", ""]
    assert parser.last_event_id == ""


def test_id_with_nul_is_ignored() -> None:
    events, _ = parse(b"id: 3\ndata: a\n\nid: 4\x005\ndata: b\n\n")
    assert [e.id for e in events] == ["3", "3"]


def test_id_of_an_incomplete_event_is_not_committed() -> None:
    events, parser = parse(b"id: 1\ndata: a\n\nid: 2\ndata: b\n")
    assert [e.id for e in events] == ["1"]
    assert parser.last_event_id == "1"  # what a reconnect must send: event 2 was not seen


def test_retry_only_all_digits() -> None:
    _, parser = parse("retry: 15x\n\nretry: -1\n\nretry: \u0661\u0662\n\n".encode())
    assert parser.retry is None
    _, parser = parse(b"retry: 300\n\nretry: abc\n\n")
    assert parser.retry == 300


def test_unknown_fields_and_field_without_colon() -> None:
    events, _ = parse(b"foo: bar\nevent\ndata\n\n")
    assert events == [ServerSentEvent("", "message", "")]


def test_trailing_incomplete_event_is_discarded_on_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: complete\n\ndata: partial") == [
        ServerSentEvent("complete", "message", "")
    ]
    parser.close()
    assert parser.feed(b"\n\n") == []


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    events, _ = parse(b"data: \xff\xfe\n\n")
    assert events[0].data == "\ufffd\ufffd"


def test_many_events_in_one_chunk_in_order() -> None:
    chunk = b"".join(b"id: %d\ndata: %d\n\n" % (i, i) for i in range(500))
    events, parser = parse(chunk)
    assert [e.data for e in events] == [str(i) for i in range(500)]
    assert parser.last_event_id == "499"
