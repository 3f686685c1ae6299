"""Run the app embedded: on a given or free port, inside any asyncio program."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from streamkit.server.app import create_app
from streamkit.server.connections import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    ConnectionLimits,
    ConnectionRunner,
)
from streamkit.server.listener import ListenerSite
from streamkit.server.nofile import connections_allowed
from streamkit.server.store.base import Store


@dataclass
class RunningServer:
    """A server listening on ``host:port``; ``await close()`` stops it and closes the store."""

    app: web.Application
    runner: web.AppRunner
    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:7376`` (``https`` when serving TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def close(self) -> None:
        """Stop accepting, finish in-flight requests (briefly), then clean up the app."""
        await self.runner.cleanup()


async def start_server(
    store: Store,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    shutdown_timeout: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    **app_options: Any,
) -> RunningServer:
    """Open ``store``, build the app and listen; ``port=0`` picks a free port.

    With ``ssl_context`` (see `tls_context`) the server speaks HTTPS.
    ``idle_timeout`` closes a keep-alive connection idle that many seconds;
    ``header_timeout`` is how long a new connection has to send its first
    request head (and finish its TLS handshake); past ``max_connections``
    (lowered to fit the open-file limit) a new connection gets a 503 (see
    `streamkit.server.connections`). ``app_options`` are passed to `create_app`.
    """
    limits = ConnectionLimits(
        idle_timeout=idle_timeout,
        header_timeout=header_timeout,
        max_connections=connections_allowed(max_connections),
    )
    app = create_app(store, **app_options)
    # A client that hangs up cancels its handler: an abandoned long-poll stops
    # waiting (and takes nothing) instead of holding its slot until wait_for ends.
    runner = ConnectionRunner(
        app,
        limits=limits,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        handler_cancellation=True,
    )
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        site = ListenerSite(runner, sock, ssl_context=ssl_context, handshake_timeout=header_timeout)
        await site.start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return RunningServer(
        app=app,
        runner=runner,
        host=host,
        port=sock.getsockname()[1],
        tls=ssl_context is not None,
    )


def tls_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) from a PEM certificate chain and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context
