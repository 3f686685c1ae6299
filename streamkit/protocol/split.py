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


def join(raw: bytes) -> Any:
    """The JSON publish body ``raw`` stands for: its JSON part, each message with a
    ``data_size`` given its ``data`` (as text) from the rest; `SplitBodyError`
    when it cannot be. What the JSON part holds is not checked here, only what the
    data section needs (`publish_body` checks the rest, as for a JSON body)."""
    if len(raw) < _LENGTH:
        raise SplitBodyError(f"it starts with the {_LENGTH}-byte length of its JSON part")
    end = _LENGTH + int.from_bytes(raw[:_LENGTH], "big")
    if end > len(raw):
        raise SplitBodyError(
            f"its JSON part is said to be {end - _LENGTH} bytes, "
            f"but {len(raw) - _LENGTH} follow the length"
        )
    view = memoryview(raw)
    try:
        body = orjson.loads(view[_LENGTH:end])
    except orjson.JSONDecodeError as exc:
        raise SplitBodyError(f"its JSON part is malformed: {exc}") from None
    messages = body.get("messages") if isinstance(body, dict) else None
    at = _fill(messages, view, end) if isinstance(messages, list) else end
    if at != len(raw):
        raise SplitBodyError(
            f"{len(raw) - at} bytes after the JSON part belong to no message's {DATA_SIZE}"
        )
    return body


def _fill(messages: list[Any], view: memoryview, at: int) -> int:
    """Give each message with a ``data_size`` its data, read from ``at`` on; where the
    data section ends."""
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
        if at + size > len(view):
            raise SplitBodyError(
                f"the messages' {DATA_SIZE} add up to more than the "
                f"{len(view) - at} bytes left at messages[{i}]"
            )
        try:
            message["data"] = str(view[at : at + size], "utf-8")
        except UnicodeDecodeError as exc:
            problems[f"messages[{i}].data"] = [f"is not valid UTF-8 (at byte {exc.start})"]
        at += size
    if problems:
        raise SplitBodyError("some messages are not valid", problems)
    return at


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
