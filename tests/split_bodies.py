"""Split publish bodies as the publisher makes them, for the tests of `streamkit.protocol.split`."""

from __future__ import annotations

from typing import Any

import orjson

from streamkit.protocol.split import DATA_SIZE, SPLIT_DATA_CHARS, pieces


def split_messages(
    messages: list[dict[str, Any]], cut: int = SPLIT_DATA_CHARS
) -> tuple[list[str], list[bytes]]:
    """Each message's JSON text, its data of ``cut`` characters or more kept apart (in
    ``data_size`` order), as `Publisher` encodes them."""
    texts, blobs = [], []
    for message in messages:
        message = dict(message)
        if len(message["data"]) >= cut:
            blob = message.pop("data").encode()
            message[DATA_SIZE] = len(blob)
            blobs.append(blob)
        texts.append(orjson.dumps(message).decode())
    return texts, blobs


def split_body(messages: list[dict[str, Any]], cut: int = SPLIT_DATA_CHARS) -> bytes:
    """The split body of ``messages``, whole."""
    return b"".join(pieces(*split_messages(messages, cut)))
