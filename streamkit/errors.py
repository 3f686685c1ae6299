"""Every exception streamkit raises, in one flat hierarchy.

```
StreamkitError
├── TransportError            the request never got an HTTP answer
│   ├── ConnectError          no connection to any endpoint
│   └── TimeoutError          the peer stalled past a timeout
├── APIError                  the server answered with an error status
│   ├── BadRequest            400
│   ├── Unauthorized          401
│   ├── NotFound              404
│   ├── Conflict              409
│   ├── PayloadTooLarge       413
│   ├── ValidationError       422
│   ├── Overloaded            429 / 503, with retry_after
│   │   └── StorageFull       507: the server's disk is full
│   └── ServerError           other 5xx
│       └── GatewayError      502 / 504: a proxy in front of the server failed
├── DecodeError               a body that is not what the protocol says
├── QueueFull                 publish(block=False) on a full buffer
├── ClientClosed              the client was used after close()
├── InvalidURL                a server URL without http(s):// or a host (also a ValueError)
└── Nack                      a published event the server did not store
```

Each class says in ``retriable`` whether the same request may succeed if it is
sent again later without risk: the server did not act on it (no answer came,
it shed load, a gateway failed). `streamkit._http.retry.retriable` is the one
place that asks, for every loop that retries.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import ClassVar


class StreamkitError(Exception):
    """Base class of every error streamkit raises."""

    retriable: ClassVar[bool] = False
    """True when sending the same request again later may succeed."""


# Transport: no usable HTTP answer.


class TransportError(StreamkitError):
    """The request failed below HTTP: connection refused, reset, or timed out."""

    retriable = True


class ConnectError(TransportError):
    """A connection to the server could not be made or was lost mid-request."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """The server did not answer within the timeout."""


# API: the server answered with an error status.


class APIError(StreamkitError):
    """The server rejected a request; ``status`` and ``summary`` say why."""

    def __init__(
        self,
        status: int,
        summary: str,
        *,
        code: str | None = None,
        validation_errors: Mapping[str, Sequence[str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.summary = summary
        self.code = code
        self.validation_errors: dict[str, list[str]] = {
            field: list(problems) for field, problems in (validation_errors or {}).items()
        }
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.status}: {self.summary}"
        if self.validation_errors:
            details = "; ".join(
                f"{field} {', '.join(problems)}"
                for field, problems in self.validation_errors.items()
            )
            text = f"{text} ({details})"
        return text


class BadRequest(APIError):
    """400: the request was malformed."""


class Unauthorized(APIError):
    """401: the API key is missing or wrong."""


class NotFound(APIError):
    """404: no stream or consumer matches the given name or id."""


class Conflict(APIError):
    """409: the request conflicts with the current state."""


class PayloadTooLarge(APIError):
    """413: the request body is over the server's limit."""


class ValidationError(APIError):
    """422: the body was well-formed but invalid; see ``validation_errors``."""


class Overloaded(APIError):
    """429 or 503: the server is shedding load; retry after ``retry_after`` seconds."""

    retriable = True


class StorageFull(Overloaded):
    """507: the server's disk is full; nothing was stored; retry after ``retry_after`` seconds."""


class ServerError(APIError):
    """Any other 5xx: the server failed."""


class GatewayError(ServerError):
    """502 or 504: a proxy or load balancer in front of the server failed to reach it."""

    retriable = True


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: Overloaded,
    502: GatewayError,
    503: Overloaded,
    504: GatewayError,
    507: StorageFull,
}


def error_for_status(status: int) -> type[APIError]:
    """The most specific `APIError` subclass for an HTTP status."""
    if status in _STATUS_ERRORS:
        return _STATUS_ERRORS[status]
    return ServerError if status >= 500 else APIError


# Client-side conditions.


class DecodeError(StreamkitError):
    """A response or payload could not be decoded as the protocol (or a payload's model) says.

    For a received payload that does not fit the model it is decoded as,
    ``stream``, ``seq`` and ``field`` (a dotted path, ``items.0.sku``) say which
    event and which field; each is None when not known.
    """

    def __init__(
        self,
        message: str,
        *,
        stream: str | None = None,
        seq: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.stream = stream
        self.seq = seq
        self.field = field


class QueueFull(StreamkitError):
    """The publish buffer is full and ``block=False`` was given."""


class ClientClosed(StreamkitError):
    """The client (or the publisher or subscription) was used after it closed."""


class InvalidURL(StreamkitError, ValueError):
    """A server URL that cannot be used: not ``http://`` or ``https://``, or no host."""


class Nack(StreamkitError):
    """A published event was not stored: ``id`` names it, ``code`` and ``error`` say why.

    Passed to ``on_nack`` callbacks and raised by ``Event.wait_for_ack()``.
    """

    def __init__(self, id: str, code: str, error: str) -> None:
        self.id = id
        self.code = code
        self.error = error
        super().__init__(f"event {id} not stored: {code}: {error}")
