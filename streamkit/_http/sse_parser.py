"""An incremental parser for ``text/event-stream`` (the WHATWG server-sent events format).

Pure: feed it bytes as they arrive, in chunks of any size, and it returns the
events completed so far. It follows the HTML standard's "event stream
interpretation": UTF-8 with an optional leading BOM; lines end in CRLF, LF or
CR (a CRLF split across two chunks is one line end); a line starting with
``:`` is a comment; ``field: value`` with one optional space after the colon;
``data`` lines accumulate (joined by ``\\n``); ``id`` sets the last event id
(ignored if it contains NUL) and persists across events; ``retry`` sets the
reconnection time when it is all ASCII digits; a blank line dispatches the
event, unless no ``data`` was seen; unknown fields are ignored; an event left
incomplete when the stream ends is discarded.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event."""

    data: str
    """The data lines joined by ``\\n``."""
    event: str = "message"
    """The event type (``event:`` field), ``"message"`` when absent."""
    id: str = ""
    """The last event id when this event was dispatched (may come from an earlier event)."""


class SSEParser:
    """Turns chunks of an event stream into `ServerSentEvent` objects.

    ``last_event_id`` is the standard's "last event ID string": the latest ``id``
    committed by a blank line, so an ``id`` of an event still incomplete at a
    chunk's end is not in it yet (and an ``id:`` block without ``data`` sets it
    without dispatching anything). It is what a reconnect sends as
    ``Last-Event-ID``. ``retry`` is the reconnection time in milliseconds (None
    until the server sends one); ``comments`` counts comment lines seen.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._skip_lf = False
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._id = ""
        self.last_event_id = ""
        self.retry: int | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume ``chunk``; return the events it completed, in order."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        if not text:
            return []
        buffer = self._pending + text
        lines = _LINE_END.split(buffer)
        self._pending = lines.pop()
        if buffer.endswith("\r"):
            self._skip_lf = True  # the next chunk may start with the LF of this CRLF
        out: list[ServerSentEvent] = []
        for line in lines:
            self._line(line, out)
        return out

    def close(self) -> None:
        """The stream ended: whatever event was incomplete is discarded."""
        self._pending = ""
        self._skip_lf = False
        self._data = []
        self._event = ""
        self._id = self.last_event_id
        self._decoder.reset()

    def _line(self, line: str, out: list[ServerSentEvent]) -> None:
        if not line:
            self._dispatch(out)
            return
        name, colon, value = line.partition(":")
        if colon:
            if not name:
                self.comments += 1
                return
            if value.startswith(" "):
                value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)

    def _dispatch(self, out: list[ServerSentEvent]) -> None:
        # The id is committed at every blank line, even one ending an event without data.
        self.last_event_id = self._id
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return
        out.append(ServerSentEvent("\n".join(data), event or "message", self.last_event_id))
