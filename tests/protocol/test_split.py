"""The split publish body: what the client sends, the server takes apart into the
JSON body it stands for, and every broken layout is refused with a reason."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.protocol.split import (
    DATA_SIZE,
    SPLIT_DATA_CHARS,
    SplitBodyError,
    join,
    pieces,
    rejoin,
)
from tests.split_bodies import split_messages


def _body(json_part: bytes, data: bytes = b"", length: int | None = None) -> bytes:
    size = len(json_part) if length is None else length
    return size.to_bytes(4, "big") + json_part + data


CUT = 10
"""Data this long or longer goes apart in these tests (4,096 characters in the client's)."""

MIXED: list[dict[str, Any]] = [
    {"key": "a", "data": "small"},
    {"key": "b", "data": "é" * 50, "id": "one", "headers": {"h": "v"}},
    {"key": "c", "data": ""},
    {"key": "d", "data": "x" * 100 + '"\\\n\u2028'},
    {"key": "e", "data": "tiny"},
]


def test_a_split_body_joins_into_the_json_body_it_stands_for() -> None:
    texts, blobs = split_messages(MIXED, CUT)
    assert len(blobs) == 2
    assert join(pieces(texts, blobs)) == {"messages": MIXED}


def test_the_blobs_are_sent_as_they_are() -> None:
    texts, blobs = split_messages(MIXED, CUT)
    sent = pieces(texts, blobs)
    assert sent[1:] == blobs and all(a is b for a, b in zip(sent[1:], blobs, strict=True))


def test_a_message_may_have_no_data_at_all_apart() -> None:
    empty = [{"key": "k", DATA_SIZE: 0}]
    assert join([_body(orjson.dumps({"messages": empty}))]) == {
        "messages": [{"key": "k", "data": ""}]
    }


@given(st.lists(st.text(max_size=40), max_size=8), st.integers(0, 40))
def test_any_messages_survive_the_trip(datas: list[str], cut: int) -> None:
    messages = [{"key": f"k{i}", "data": data} for i, data in enumerate(datas)]
    texts, blobs = split_messages(messages, cut)
    assert join(pieces(texts, blobs)) == {"messages": messages}
    assert [orjson.loads(text) for text in rejoin(texts, blobs)] == messages


def test_what_the_json_part_holds_is_left_to_the_publish_rules() -> None:
    # Not a list, not objects: nothing to fill; the route's validation explains.
    for doc in ({"messages": "x"}, {"messages": [1, "two"]}, [1], {}):
        assert join([_body(orjson.dumps(doc))]) == doc


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "4-byte length"),
        (b"\x00\x00", "4-byte length"),
        (_body(b'{"messages":[]}', length=99), "said to be 99 bytes, but 15 follow"),
        (_body(b'{"messages":['), "JSON part is malformed"),
        (_body(b'{"messages":[{"key":"k","data":"d"}]}', b"extra"), "5 bytes after the JSON part"),
        (_body(b'{"messages":[{"key":"k","data_size":6}]}', b"short"), "add up to more than the 5"),
        (
            _body(b'{"messages":[{"key":"k","data_size":2},{"key":"k","data_size":3}]}', b"abcd"),
            "more than the 2 bytes left at messages[1]",
        ),
    ],
    ids=["empty", "short-length", "length-past-end", "bad-json", "leftover", "past-end", "second"],
)
def test_a_broken_layout_is_refused_with_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(SplitBodyError, match=reason.replace("[", r"\[")) as caught:
        join([raw])
    assert caught.value.fields == {}


@pytest.mark.parametrize(
    ("message", "data", "field", "problem"),
    [
        ({DATA_SIZE: -1}, b"", f"messages[1].{DATA_SIZE}", "whole number"),
        ({DATA_SIZE: "3"}, b"", f"messages[1].{DATA_SIZE}", "whole number"),
        ({DATA_SIZE: True}, b"", f"messages[1].{DATA_SIZE}", "whole number"),
        ({DATA_SIZE: 1.5}, b"", f"messages[1].{DATA_SIZE}", "whole number"),
        ({DATA_SIZE: 2, "data": "d"}, b"ab", "messages[1]", f"both data and {DATA_SIZE}"),
        ({DATA_SIZE: 3}, b"a\xffb", "messages[1].data", "not valid UTF-8 (at byte 1)"),
        ({DATA_SIZE: 3}, "\u20ac".encode()[:2] + b"x", "messages[1].data", "not valid UTF-8"),
    ],
    ids=["negative", "text", "bool", "float", "both", "bad-byte", "cut-char"],
)
def test_a_message_at_fault_is_named(
    message: dict[str, Any], data: bytes, field: str, problem: str
) -> None:
    doc = {"messages": [{"key": "ok", "data": "fine"}, {"key": "k", **message}]}
    with pytest.raises(SplitBodyError) as caught:
        join([_body(orjson.dumps(doc), data)])
    assert list(caught.value.fields) == [field]
    assert problem in caught.value.fields[field][0]


def test_every_message_at_fault_is_named_at_once() -> None:
    doc = {"messages": [{"key": "k", DATA_SIZE: 1}, {"key": "k", DATA_SIZE: -2}]}
    with pytest.raises(SplitBodyError) as caught:
        join([_body(orjson.dumps(doc), b"\xff")])
    assert sorted(caught.value.fields) == ["messages[0].data", f"messages[1].{DATA_SIZE}"]


LARGE = "x" * SPLIT_DATA_CHARS
LARGE_MESSAGES: list[dict[str, Any]] = [
    {"key": "a", "data": LARGE},
    {"key": "b", "data": "small"},
    {"key": "c", "data": "é" * SPLIT_DATA_CHARS},  # large, not ASCII
    {"key": "d", "data": LARGE + "y" * 100, "id": "i"},
    {"key": "e", "data": "x" * (SPLIT_DATA_CHARS - 1)},
]


def _as_text(body: Any) -> Any:
    """``body`` with each memoryview data as text (what it stands for)."""
    for message in body["messages"]:
        if isinstance(message["data"], memoryview):
            message["data"] = str(message["data"], "ascii")
    return body


def _cut(raw: bytes, cuts: list[int]) -> list[bytes]:
    """``raw`` in chunks, cut at ``cuts`` (positions, in any order)."""
    at = sorted({0, len(raw), *(c % (len(raw) + 1) for c in cuts)})
    return [raw[a:b] for a, b in itertools.pairwise(at)]


def test_large_ascii_data_comes_as_the_bytes_it_came_in() -> None:
    chunks = pieces(*split_messages(LARGE_MESSAGES))
    messages = join(chunks)["messages"]
    assert [type(m["data"]) for m in messages] == [memoryview, str, str, memoryview, str]
    # A view of the chunk it came in, not a copy (the client sends each blob as it is).
    assert messages[0]["data"].obj is chunks[1] and messages[3]["data"].obj is chunks[3]
    assert _as_text({"messages": messages}) == {"messages": LARGE_MESSAGES}


@given(st.lists(st.integers(0, 5 * SPLIT_DATA_CHARS), max_size=12))
def test_a_body_in_any_chunks_stands_for_the_same_messages(cuts: list[int]) -> None:
    raw = b"".join(pieces(*split_messages(LARGE_MESSAGES)))
    assert _as_text(join(_cut(raw, cuts))) == {"messages": LARGE_MESSAGES}
    assert _as_text(join([raw[:1], b"", raw[1:]])) == {"messages": LARGE_MESSAGES}


def test_large_data_in_a_chunk_that_is_not_all_ascii_comes_as_text() -> None:
    # The first chunk holds the length (a byte of it past 0x7f), the JSON part and the
    # data: the data is checked (and given) as text then, which is just as right.
    json_part = orjson.dumps({"messages": [{"key": "k", DATA_SIZE: len(LARGE)}] * 2})
    padded = json_part + b" " * ((0x80 - len(json_part)) % 0x100)  # JSON may end in spaces
    raw = _body(padded, LARGE.encode() * 2)
    assert raw[3] >= 0x80
    messages = join([raw])["messages"]
    assert [m["data"] for m in messages] == [LARGE, LARGE]


@pytest.mark.parametrize("where", [0, SPLIT_DATA_CHARS - 1, SPLIT_DATA_CHARS + 10])
@pytest.mark.parametrize("cut", [None, SPLIT_DATA_CHARS // 2, SPLIT_DATA_CHARS + 5])
def test_large_data_that_is_not_utf8_is_named(where: int, cut: int | None) -> None:
    data = bytearray(b"x" * (SPLIT_DATA_CHARS + 20))
    data[where] = 0xFF
    doc = {"messages": [{"key": "ok", "data": "fine"}, {"key": "k", DATA_SIZE: len(data)}]}
    raw = _body(orjson.dumps(doc), bytes(data))
    chunks = [raw] if cut is None else _cut(raw, [len(raw) - len(data) + cut])
    with pytest.raises(SplitBodyError) as caught:
        join(chunks)
    assert caught.value.fields == {"messages[1].data": [f"is not valid UTF-8 (at byte {where})"]}


def test_rejoin_gives_each_message_its_data_back_in_order() -> None:
    texts, blobs = split_messages(MIXED, CUT)
    assert [orjson.loads(text) for text in rejoin(texts, blobs)] == MIXED
    assert rejoin(texts[:1], []) == texts[:1]  # whole messages stay as they are
