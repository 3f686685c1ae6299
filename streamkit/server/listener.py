"""The listening socket: accepts connections, and pauses instead of spinning when it cannot.

asyncio's own accept loop reacts to ``EMFILE`` (no file descriptor left) by
logging a traceback and retrying, once per pending connection and again for
every retry it scheduled: out of descriptors, a server writes megabytes of log
a second and stops answering. `ListenerSite` accepts on its own: on any accept
error it stops watching the socket for ``ACCEPT_PAUSE`` seconds (waiting
clients stay in the kernel's backlog) and logs one line per interval with the
count (`ThrottledLog`). Each accepted socket is handed to the event loop with
``connect_accepted_socket``, so TLS and the protocol work as usual.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from aiohttp import web

from streamkit.server.logs import ThrottledLog

log = logging.getLogger(__name__)

ACCEPT_PAUSE = 0.5
"""Seconds the listener stops accepting after an accept error (out of descriptors, say)."""

ACCEPT_BATCH = 128
"""Connections accepted per wake-up of the listener, so one burst cannot hog the loop."""


class Listener(asyncio.AbstractServer):
    """Accepts on ``sock`` and hands each connection to ``protocol_factory``."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        *,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float | None = None,
        accept_pause: float = ACCEPT_PAUSE,
        error_log: ThrottledLog | None = None,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._ssl_context = ssl_context
        self._handshake_timeout = handshake_timeout
        self._accept_pause = accept_pause
        self.errors = error_log or ThrottledLog(log)
        """Accept failures, counted and logged once per interval."""
        self._loop = asyncio.get_running_loop()
        self._serving = False
        self._resume: asyncio.TimerHandle | None = None
        self._handing_over: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening socket (as ``asyncio.Server.sockets``)."""
        return (self._sock,) if self._sock.fileno() >= 0 else ()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop this listener accepts on."""
        return self._loop

    def is_serving(self) -> bool:
        """True while accepting (or paused after an error, about to resume)."""
        return self._serving

    async def start_serving(self) -> None:
        """Start accepting."""
        if not self._serving:
            self._serving = True
            self._watch()

    async def serve_forever(self) -> None:
        """Accept until cancelled."""
        await self.start_serving()
        try:
            await asyncio.Future()
        finally:
            self.close()

    def close(self) -> None:
        """Stop accepting, close the socket and cancel connections not yet handed over."""
        self._serving = False
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        for task in self._handing_over:
            task.cancel()

    async def wait_closed(self) -> None:
        """Wait until the connections being handed over are done (or cancelled)."""
        if self._handing_over:
            await asyncio.gather(*self._handing_over, return_exceptions=True)

    def _watch(self) -> None:
        self._resume = None
        if self._serving:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while waiting in the backlog
            except OSError as exc:
                self._pause(exc)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._hand_over(conn), name="streamkit-accept")
            self._handing_over.add(task)
            task.add_done_callback(self._handing_over.discard)

    def _pause(self, exc: OSError) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._resume = self._loop.call_later(self._accept_pause, self._watch)
        self.errors.warning(
            "cannot accept connections: %s; pausing the listener for %.1fs",
            exc,
            self._accept_pause,
        )

    async def _hand_over(self, conn: socket.socket) -> None:
        try:
            if self._ssl_context is None:
                await self._loop.connect_accepted_socket(self._factory, conn)
            else:
                await self._loop.connect_accepted_socket(
                    self._factory,
                    conn,
                    ssl=self._ssl_context,
                    ssl_handshake_timeout=self._handshake_timeout,
                )
        except asyncio.CancelledError:
            conn.close()
            raise
        except (OSError, asyncio.TimeoutError) as exc:
            # A client that vanished or failed its TLS handshake: its own problem.
            conn.close()
            log.debug("connection dropped before it was served: %r", exc)
        except Exception:
            conn.close()
            log.exception("could not serve an accepted connection")


class ListenerSite(web.BaseSite):
    """An aiohttp site serving the runner on an already bound and listening ``sock``."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        *,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._sock = sock
        self._handshake_timeout = handshake_timeout
        self.listener: Listener | None = None
        host, port = sock.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        self._name = f"{'https' if ssl_context else 'http'}://{host}:{port}"

    @property
    def name(self) -> str:
        """The site's URL."""
        return self._name

    async def start(self) -> None:
        """Register with the runner and start accepting."""
        await super().start()
        server = self._runner.server
        assert server is not None
        self.listener = Listener(
            self._sock,
            server,
            ssl_context=self._ssl_context,
            handshake_timeout=self._handshake_timeout,
        )
        try:
            await self.listener.start_serving()
        except NotImplementedError:  # Windows' proactor loop cannot watch a socket
            self.listener = None
            self._server = await asyncio.get_running_loop().create_server(
                server,
                sock=self._sock,
                ssl=self._ssl_context,
                ssl_handshake_timeout=self._handshake_timeout if self._ssl_context else None,
            )
            return
        self._server = self.listener

    async def stop(self) -> None:
        """Stop accepting (aiohttp closes the open connections afterwards)."""
        await super().stop()
        if self.listener is not None:
            await self.listener.wait_closed()
