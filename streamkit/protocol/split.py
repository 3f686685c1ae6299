"""The split publish body: large messages' data after the JSON, not inside it.

A publish body of media type `SPLIT_MESSAGES` is::

    4 bytes     N, the length of the JSON part (unsigned, big-endian)
    N bytes     the JSON part: the usual {"messages": [...]}, except that a message
                may carry "data_size": k (its data's length in UTF-8 bytes)
                instead of "data"
    the rest    the data of those messages, in their order, back to back

A message with ``data`` is taken as it is. The server takes a split body
exactly as it would take the JSON body it stands for: every rule, limit and
error is the same, and a body whose layout is broken stores nothing.

Why: JSON costs a large message its escaping on the client and its scanning
on the server, and each side's copies of a string made only to hold it. At 64 KB
per message, parsing the JSON was a fifth of the server's CPU per message.

The server (`join`) reads a split body in the chunks it arrived in, without
joining them, and keeps large ASCII data as those bytes: a view of its chunk,
which the store writes to its data file as it is. Joining the body, decoding
the data into text and encoding it back cost the server a fifth of its CPU per
64 KB message again.

The server says it takes such bodies with ``Accept-Post`` (`ACCEPT_POST`) on its
publish answers and on its answer to ``OPTIONS`` on the route; a client sends
JSON until it has seen that. Sequin's JSON body stays as it is: plain clients
never see any of this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

SPLIT_MESSAGES = "application/x-streamkit-messages"
"""The media type of a split publish body."""
ACCEPT_POST = f"application/json, {SPLIT_MESSAGES}"
"""The ``Accept-Post`` header of a publish answer: the bodies the route takes."""
SPLIT_DATA_CHARS = 4096
"""The client sends data this long or longer (in characters) after the JSON part."""
DATA_SIZE = "data_size"
"""The field that stands for a message's ``data`` in the JSON part."""

_LENGTH = 4


class SplitBodyError(ValueError):
    """A split body that cannot be taken apart. ``fields`` names the messages at
    fault (``{"messages[3].data": ["is not valid UTF-8"]}``) when the fault is
    theirs; it is empty when the layout itself is broken."""

    def __init__(self, summary: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(summary)
        self.fields = fields or {}


def pieces(messages: Sequence[str], blobs: Sequence[bytes]) -> list[bytes]:
    """The split body of ``messages`` (each a message object's JSON text; those with
    a ``data_size`` in the order of ``blobs``), as pieces to send one after another:
    the JSON part with its length, then each blob as it is (no copy)."""
    head = ('{"messages":[' + ",".join(messages) + "]}").encode()
    return [len(head).to_bytes(_LENGTH, "big") + head, *blobs]


def join(chunks: Sequence[bytes]) -> Any:
    """The JSON publish body that the split body in ``chunks`` (as it arrived, in
    pieces) stands for: its JSON part, each message with a ``data_size`` given its
    ``data`` from the rest; `SplitBodyError` when it cannot be. What the JSON part
    holds is not checked here, only what the data section needs (`publish_body`
    checks the rest, as for a JSON body).

    Data of `SPLIT_DATA_CHARS` bytes or more that is ASCII is given as it came, a
    `memoryview` of its bytes (which are its characters): no copy is made of it,
    unless it straddles two chunks. Other data is given as text."""
    reader = _Reader(chunks)
    if reader.left < _LENGTH:
        raise SplitBodyError(f"it starts with the {_LENGTH}-byte length of its JSON part")
    json_bytes = int.from_bytes(reader.take(_LENGTH), "big")
    if json_bytes > reader.left:
        raise SplitBodyError(
            f"its JSON part is said to be {json_bytes} bytes, but {reader.left} follow the length"
        )
    try:
        body = orjson.loads(reader.take(json_bytes))
    except orjson.JSONDecodeError as exc:
        raise SplitBodyError(f"its JSON part is malformed: {exc}") from None
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list):
        _fill(messages, reader)
    if reader.left:
        raise SplitBodyError(
            f"{reader.left} bytes after the JSON part belong to no message's {DATA_SIZE}"
        )
    return body


def _fill(messages: list[Any], reader: _Reader) -> None:
    """Give each message with a ``data_size`` its data, read from ``reader``."""
    problems: dict[str, list[str]] = {}
    for i, message in enumerate(messages):
        if type(message) is not dict or DATA_SIZE not in message:
            continue
        size = message.pop(DATA_SIZE)
        if type(size) is not int or size < 0:
            problems[f"messages[{i}].{DATA_SIZE}"] = ["must be a whole number of bytes"]
            continue
        if "data" in message:
            problems[f"messages[{i}]"] = [f"has both data and {DATA_SIZE}"]
        if size > reader.left:
            raise SplitBodyError(
                f"the messages' {DATA_SIZE} add up to more than the "
                f"{reader.left} bytes left at messages[{i}]"
            )
        try:
            message["data"] = reader.data(size)
        except UnicodeDecodeError as exc:
            problems[f"messages[{i}].data"] = [f"is not valid UTF-8 (at byte {exc.start})"]
    if problems:
        raise SplitBodyError("some messages are not valid", problems)


class _Reader:
    """Reads a split body from the chunks it arrived in, front to back, copying only
    what straddles two chunks."""

    __slots__ = ("_ascii", "_at", "_chunks", "_index", "left")

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = [chunk for chunk in chunks if chunk]
        self._index = 0  # the chunk read next
        self._at = 0  # where in it
        self._ascii: dict[int, bool] = {}  # whether a chunk is all ASCII, once asked
        self.left = sum(map(len, self._chunks))
        """Bytes not read yet."""

    def take(self, size: int) -> memoryview:
        """The next ``size`` bytes (at most `left`)."""
        if not size:
            return memoryview(b"")
        if self._within(size):
            return self._slice(size)
        return memoryview(self._joined(size))

    def data(self, size: int) -> str | memoryview:
        """The next ``size`` bytes as a message's data (`join` says which type);
        `UnicodeDecodeError` when they are not UTF-8."""
        if size < SPLIT_DATA_CHARS:
            return str(self.take(size), "utf-8")
        if self._within(size):
            index = self._index
            ascii = self._ascii.get(index)
            if ascii is None:
                ascii = self._ascii[index] = self._chunks[index].isascii()
            view = self._slice(size)
            return view if ascii else str(view, "utf-8")
        joined = self._joined(size)
        return memoryview(joined) if joined.isascii() else str(joined, "utf-8")

    def _within(self, size: int) -> bool:
        return self._at + size <= len(self._chunks[self._index])

    def _slice(self, size: int) -> memoryview:
        view = memoryview(self._chunks[self._index])[self._at : self._at + size]
        self._advance(size)
        return view

    def _joined(self, size: int) -> bytes:
        parts = []
        while size:
            chunk = self._chunks[self._index]
            part = memoryview(chunk)[self._at : self._at + size]
            parts.append(part)
            size -= len(part)
            self._advance(len(part))
        return b"".join(parts)

    def _advance(self, size: int) -> None:
        self.left -= size
        self._at += size
        if self._at == len(self._chunks[self._index]):
            self._index += 1
            self._at = 0


def rejoin(messages: Sequence[str], blobs: Sequence[bytes]) -> list[str]:
    """``messages`` with each ``data_size`` replaced by its data again: the JSON body
    for a server that does not take split ones (any more)."""
    rest = iter(blobs)
    joined = []
    for message in messages:
        obj = orjson.loads(message)
        if DATA_SIZE in obj:
            del obj[DATA_SIZE]
            obj["data"] = next(rest).decode()
            message = orjson.dumps(obj).decode()
        joined.append(message)
    return joined
