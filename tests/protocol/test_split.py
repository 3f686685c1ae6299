"""The split publish body: what the client sends, the server takes apart into the
JSON body it stands for, and every broken layout is refused with a reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.protocol.split import DATA_SIZE, SplitBodyError, join, pieces, rejoin
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
    assert join(b"".join(pieces(texts, blobs))) == {"messages": MIXED}


def test_the_blobs_are_sent_as_they_are() -> None:
    texts, blobs = split_messages(MIXED, CUT)
    sent = pieces(texts, blobs)
    assert sent[1:] == blobs and all(a is b for a, b in zip(sent[1:], blobs, strict=True))


def test_a_message_may_have_no_data_at_all_apart() -> None:
    empty = [{"key": "k", DATA_SIZE: 0}]
    assert join(_body(orjson.dumps({"messages": empty}))) == {
        "messages": [{"key": "k", "data": ""}]
    }


@given(st.lists(st.text(max_size=40), max_size=8), st.integers(0, 40))
def test_any_messages_survive_the_trip(datas: list[str], cut: int) -> None:
    messages = [{"key": f"k{i}", "data": data} for i, data in enumerate(datas)]
    texts, blobs = split_messages(messages, cut)
    assert join(b"".join(pieces(texts, blobs))) == {"messages": messages}
    assert [orjson.loads(text) for text in rejoin(texts, blobs)] == messages


def test_what_the_json_part_holds_is_left_to_the_publish_rules() -> None:
    # Not a list, not objects: nothing to fill; the route's validation explains.
    for doc in ({"messages": "x"}, {"messages": [1, "two"]}, [1], {}):
        assert join(_body(orjson.dumps(doc))) == doc


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
        join(raw)
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
        join(_body(orjson.dumps(doc), data))
    assert list(caught.value.fields) == [field]
    assert problem in caught.value.fields[field][0]


def test_every_message_at_fault_is_named_at_once() -> None:
    doc = {"messages": [{"key": "k", DATA_SIZE: 1}, {"key": "k", DATA_SIZE: -2}]}
    with pytest.raises(SplitBodyError) as caught:
        join(_body(orjson.dumps(doc), b"\xff"))
    assert sorted(caught.value.fields) == ["messages[0].data", f"messages[1].{DATA_SIZE}"]


def test_rejoin_gives_each_message_its_data_back_in_order() -> None:
    texts, blobs = split_messages(MIXED, CUT)
    assert [orjson.loads(text) for text in rejoin(texts, blobs)] == MIXED
    assert rejoin(texts[:1], []) == texts[:1]  # whole messages stay as they are
