"""Per-connection limits: idle and header timeouts, a cap on open connections, JSON parse errors.

aiohttp closes a keep-alive connection ``keepalive_timeout`` after its last
response, but waits forever for the first request of a new connection and
takes no count of connections. `ConnectionRunner` serves the app through
`Connection`, aiohttp's protocol plus what a server left alone needs:

- a new connection has ``header_timeout`` seconds to send its first request
  head; one that is silent or trickles it (slowloris) is closed (with a 408 if
  it sent anything). After a response the idle timeout applies, and since
  aiohttp closes an idle connection whose next request head is still
  incomplete, a slow head on a reused connection is bounded by it too;
- past ``max_connections`` open connections, a new one is answered at once
  with ``503 {"code": "too_many_connections"}`` and ``Retry-After``, without
  reading a request, then closed; it is never counted or served;
- a request the HTTP parser rejects is answered with the API's JSON error
  body (414, 431 or 400, see `http_errors`), never with the input quoted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from streamkit.server.http_errors import (
    MAX_HEADER_BYTES,
    MAX_URL_BYTES,
    parse_error,
    raw_response,
)
from streamkit.server.logs import ThrottledLog
from streamkit.server.responses import ErrorResponse

log = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 75.0
"""Seconds a keep-alive connection may sit idle between requests (above clients' 15 s pools)."""

DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a new connection has to send its first request head (and finish a TLS handshake)."""

DEFAULT_MAX_CONNECTIONS = 10_000
"""Open connections served at once; more are answered 503 (lowered to fit the nofile limit)."""

REFUSAL_LINGER = 1.0
"""Seconds a refused connection is kept to drain what its client sends, so the 503 is read."""

RETRY_AFTER_S = 1

TOO_MANY_CONNECTIONS = raw_response(
    ErrorResponse(
        503,
        "Service unavailable: too many open connections; retry later",
        "too_many_connections",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
)
HEAD_TIMEOUT = raw_response(
    ErrorResponse(
        408, "Request timeout: the request head took too long to arrive", "request_timeout"
    )
)


@dataclass(frozen=True)
class ConnectionLimits:
    """What bounds a connection's life and how many are served at once."""

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0 or self.header_timeout <= 0:
            raise ValueError("idle_timeout and header_timeout must be positive")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")


class ConnectionServer(web.Server):
    """aiohttp's server, making `Connection` protocols and counting the open ones."""

    def __init__(
        self,
        handler: Any,
        *,
        limits: ConnectionLimits,
        loop: asyncio.AbstractEventLoop,
        request_factory: Any = None,
        handler_cancellation: bool = False,
        **handler_options: Any,
    ) -> None:
        super().__init__(
            handler,
            request_factory=request_factory,
            handler_cancellation=handler_cancellation,
            loop=loop,
            **handler_options,
        )
        self.limits = limits
        self.open_connections = 0
        """Connections being served now (refused ones are never counted)."""
        self.refused_connections = 0
        """Connections answered 503 since the start."""
        self._protocol_loop = loop
        self._handler_options = handler_options
        self._refusals = ThrottledLog(log)
        self._refusing: dict[asyncio.BaseTransport, asyncio.TimerHandle] = {}
        make_request = self.request_factory

        def request_factory_with_head(
            message: Any, payload: Any, protocol: RequestHandler, writer: Any, task: Any
        ) -> web.BaseRequest:
            if isinstance(protocol, Connection):
                protocol.head_received()
            return make_request(message, payload, protocol, writer, task)

        self.request_factory = request_factory_with_head

    def __call__(self) -> RequestHandler:
        return Connection(self, loop=self._protocol_loop, **self._handler_options)

    @property
    def full(self) -> bool:
        """True when a new connection would be over the cap."""
        return self.open_connections >= self.limits.max_connections

    def refuse(self, transport: asyncio.Transport) -> None:
        """Answer a connection over the cap with the 503, then close it after a brief drain."""
        self.refused_connections += 1
        self._refusals.warning(
            "refusing connections: %d open, the most is %d (--max-connections)",
            self.open_connections,
            self.limits.max_connections,
        )
        transport.write(TOO_MANY_CONNECTIONS)
        if transport.can_write_eof():
            try:
                transport.write_eof()
            except OSError:  # the client is already gone
                transport.abort()
                return
        # Closing with the client's request unread would reset the connection and
        # could discard the 503 before the client reads it: drain briefly first.
        self._refusing[transport] = self._protocol_loop.call_later(REFUSAL_LINGER, transport.close)

    def refusal_over(self, transport: asyncio.BaseTransport) -> None:
        """A refused connection is closed: forget it."""
        timer = self._refusing.pop(transport, None)
        if timer is not None:
            timer.cancel()

    def pre_shutdown(self) -> None:
        for transport in list(self._refusing):
            transport.close()
        super().pre_shutdown()

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self.open_connections += 1
        super().connection_made(handler, transport)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self.open_connections -= 1
        super().connection_lost(handler, exc)


class Connection(RequestHandler):
    """One HTTP connection: aiohttp's protocol with a header deadline, the cap and JSON errors."""

    def __init__(
        self, manager: ConnectionServer, *, loop: asyncio.AbstractEventLoop, **options: Any
    ) -> None:
        super().__init__(manager, loop=loop, **options)
        self._connections = manager
        self._timer_loop = loop
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused: asyncio.BaseTransport | None = None
        self._bytes_seen = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._connections.full:
            # uvloop's transports are not subclasses of asyncio's, but they are streams.
            self._refused = transport
            self._connections.refuse(cast(asyncio.Transport, transport))
            return
        super().connection_made(transport)
        self._head_deadline = self._timer_loop.call_later(
            self._connections.limits.header_timeout, self._head_too_slow
        )

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return  # drained and dropped
        self._bytes_seen = True
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused is not None:
            self._connections.refusal_over(self._refused)
            return  # never counted, never served
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def head_received(self) -> None:
        """The first request head is in (or failed to parse): the header deadline is met."""
        self._cancel_head_deadline()

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        transport = self.transport
        if transport is None:
            return
        if self._bytes_seen:
            cast(asyncio.WriteTransport, transport).write(HEAD_TIMEOUT)
        log.debug("closed a connection whose request head did not arrive in time")
        self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's error answer (parse errors, crashes below the app) as a JSON body."""
        super().handle_error(request, status, exc, message)  # logs; raises if output began
        if isinstance(exc, HttpProcessingError):
            error = parse_error(exc)
        elif status == 504:
            error = ErrorResponse(504, "Gateway timeout: the request took too long", "timeout")
        else:
            error = ErrorResponse(status, "Internal server error", "internal_error")
        response = error.response()
        response.force_close()
        return response


class ConnectionRunner(web.AppRunner):
    """`web.AppRunner` serving ``app`` through `Connection` with ``limits``."""

    def __init__(self, app: web.Application, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        self._handler_options: dict[str, Any] = {
            "access_log": kwargs.pop("access_log", None),
            "keepalive_timeout": limits.idle_timeout,
            "max_line_size": MAX_URL_BYTES,
            "max_field_size": MAX_HEADER_BYTES,
        }
        self._handler_cancellation = bool(kwargs.pop("handler_cancellation", False))
        super().__init__(
            app,
            handler_cancellation=self._handler_cancellation,
            **self._handler_options,
            **kwargs,
        )
        self.limits = limits

    async def _make_server(self) -> web.Server:
        # Let aiohttp set the app up (loop, startup hooks, freezing) and build its
        # server, then serve the same handler and request factory through ours.
        base = await super()._make_server()
        return ConnectionServer(
            base.request_handler,
            limits=self.limits,
            loop=asyncio.get_running_loop(),
            request_factory=base.request_factory,
            handler_cancellation=self._handler_cancellation,
            **self._handler_options,
        )
