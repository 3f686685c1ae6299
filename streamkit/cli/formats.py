"""The CLI's line formats: input lines that become events, events printed as JSON lines.

``streamkit publish`` reads one event per line (blank lines are skipped):

- ``auto`` (default): a line that parses as JSON is published as JSON data
  (so ``{"id": 7}`` is an object and ``42`` the number 42); any other line as text.
- ``json``: every line must be JSON; a line that is not stops the command.
- ``text``: every line is published as text, as is.
- ``envelope``: every line is a JSON object ``{"data": ..., "key"?, "id"?,
  "headers"?, "encoding"?}``, the shape ``streamkit tail`` prints; other fields
  (``seq``, ``inserted_at``, ...) are ignored, so ``streamkit tail A | streamkit
  publish B --format envelope`` copies a stream, keys, ids and headers included.

``streamkit tail`` and ``consume`` print one JSON object per event: ``seq``,
``key``, ``id``, ``inserted_at``, ``data`` (the JSON value of a JSON event, the
text of a text event) and, when present, ``headers``; binary payloads are
base64 text with ``"encoding": "base64"``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from streamkit.models import Event

__all__ = ["FORMATS", "InputError", "event_from_line", "render_event"]

FORMATS = ("auto", "json", "text", "envelope")
"""The values of ``streamkit publish --format``."""


class InputError(ValueError):
    """A line of ``publish`` input that cannot become an event; the message names the line."""


def _text_or_bytes(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _event(data: Any, lineno: int, **options: Any) -> Event:
    try:
        return Event(data, **options)
    except (ValueError, TypeError) as exc:
        raise InputError(f"line {lineno}: {exc}") from None


def event_from_line(line: bytes, fmt: str, *, key: str | None, lineno: int) -> Event | None:
    """The event a line of input stands for in format ``fmt``; None for a blank line.

    ``key`` (``--key``) applies to every event that does not name its own.
    Raises `InputError` for a line the format rejects.
    """
    raw = line.rstrip(b"\r\n")
    if not raw.strip():
        return None
    if fmt == "text":
        return _event(_text_or_bytes(raw), lineno, key=key)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if fmt == "auto":
            return _event(_text_or_bytes(raw), lineno, key=key)
        raise InputError(f"line {lineno}: not JSON ({exc})") from None
    if fmt == "envelope":
        return _from_envelope(value, key, lineno)
    return _event(value, lineno, key=key)


def _from_envelope(value: Any, key: str | None, lineno: int) -> Event:
    if not isinstance(value, dict) or "data" not in value:
        raise InputError(f'line {lineno}: an envelope must be a JSON object with "data"')
    data = value["data"]
    encoding = value.get("encoding")
    if encoding in ("base64", "utf-8"):
        if not isinstance(data, str):
            raise InputError(f'line {lineno}: "data" must be a string with "encoding"')
        try:
            data = (
                base64.b64decode(data, validate=True)
                if encoding == "base64"
                else data.encode("utf-8")
            )
        except (binascii.Error, ValueError):
            raise InputError(f'line {lineno}: "data" is not valid base64') from None
    elif encoding is not None:
        raise InputError(f'line {lineno}: "encoding" must be "base64" or "utf-8"')
    headers = value.get("headers")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    ):
        raise InputError(f'line {lineno}: "headers" must be an object with string values')
    event_id = value.get("id")
    if event_id is not None and not (isinstance(event_id, str) and event_id):
        raise InputError(f'line {lineno}: "id" must be a non-empty string')
    event_key = value.get("key", key)
    if event_key is not None and not isinstance(event_key, str):
        raise InputError(f'line {lineno}: "key" must be a string')
    return _event(data, lineno, key=event_key, id=event_id, headers=headers)


def render_event(event: Event, *, delivery: bool = False) -> str:
    """One event as a JSON line (no newline); ``delivery`` adds ``delivery_count``."""
    body: dict[str, Any] = {
        "seq": event.seq,
        "key": event.key,
        "id": event.id,
        "inserted_at": event.inserted_at,
    }
    if delivery:
        body["delivery_count"] = event.delivery_count
    data = event.data
    if isinstance(data, (bytes, bytearray)):
        if event.encoding == "utf-8":
            body["data"] = bytes(data).decode("utf-8")
            body["encoding"] = "utf-8"
        else:
            body["data"] = base64.b64encode(bytes(data)).decode("ascii")
            body["encoding"] = "base64"
    else:
        body["data"] = data
    if event.headers:
        body["headers"] = event.headers
    return orjson.dumps(body, option=orjson.OPT_UTC_Z).decode("utf-8")
