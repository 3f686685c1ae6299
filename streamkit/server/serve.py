"""``streamkit serve`` / ``python -m streamkit.server``: run the server until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sqlite3

from streamkit.protocol.wire import MAX_MESSAGE_BYTES
from streamkit.server import event_loop
from streamkit.server.connections import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
)
from streamkit.server.engines import ENGINES, create_store, default_engine
from streamkit.server.gc_tuning import tune_gc
from streamkit.server.limits import DEFAULT_MAX_LONG_POLLS, DEFAULT_MAX_WAITING
from streamkit.server.logs import quiet_malformed_requests
from streamkit.server.nofile import raise_open_file_limit
from streamkit.server.runner import start_server, tls_context
from streamkit.server.store.base import DEFAULT_DEDUPE_WINDOW_MS, StoreUnavailable

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7376
DEFAULT_DB = "streamkit.db"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options, shared by the CLI and ``python -m streamkit.server``."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (%(default)s)")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=default_engine(),
        help="storage engine: sqlite (embedded) or jetstream (NATS; stateless gateways) "
        "(default: $STREAMKIT_ENGINE, else sqlite)",
    )
    parser.add_argument("--db", default=DEFAULT_DB, help="SQLite database file (%(default)s)")
    parser.add_argument(
        "--nats",
        default=None,
        metavar="URL[,URL...]",
        help="NATS servers for --engine jetstream "
        "(default: $STREAMKIT_NATS_URL, else nats://127.0.0.1:4222)",
    )
    parser.add_argument(
        "--nats-prefix",
        default="streamkit",
        help="subject/stream name prefix in NATS, one per deployment (%(default)s)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="JetStream replicas of new streams; 3 on a 3-node cluster (%(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("STREAMKIT_API_KEY") or None,
        help="require 'Authorization: Bearer KEY' (default: $STREAMKIT_API_KEY, else no auth)",
    )
    parser.add_argument(
        "--synchronous",
        choices=("normal", "full"),
        default="normal",
        help="SQLite synchronous mode: normal survives a killed process, "
        "full also survives power loss (%(default)s)",
    )
    parser.add_argument(
        "--dedupe-window",
        type=_positive_seconds,
        default=DEFAULT_DEDUPE_WINDOW_MS / 1000,
        metavar="SECONDS",
        help="how long a message id is remembered, so a retry is not stored twice (%(default)s)",
    )
    parser.add_argument(
        "--dedupe-max-ids",
        type=_positive_int,
        default=None,
        metavar="N",
        help="sqlite: the most ids remembered, about 150 bytes each; past it the oldest "
        "quarter is forgotten before the window ends (default 1000000)",
    )
    parser.add_argument(
        "--loop",
        choices=event_loop.LOOPS,
        default="auto",
        help="event loop: uvloop (the fast extra installs it) or asyncio; "
        "auto is uvloop when installed (%(default)s)",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="logging level (%(default)s)", type=str.upper
    )
    parser.add_argument("--cert", help="PEM certificate (chain) file: serve HTTPS")
    parser.add_argument("--key", help="PEM private key file for --cert (if not inside it)")
    parser.add_argument(
        "--max-waiting",
        type=int,
        default=DEFAULT_MAX_WAITING,
        help="long-polls waiting at once per consumer; more get 429 (%(default)s)",
    )
    parser.add_argument(
        "--max-long-polls",
        type=int,
        default=DEFAULT_MAX_LONG_POLLS,
        help="long-polls waiting at once on the server; more get 429 (%(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_positive_seconds,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="close a keep-alive connection idle this long between requests (%(default)s)",
    )
    parser.add_argument(
        "--header-timeout",
        type=_positive_seconds,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="close a new connection that has not sent a whole request head "
        "(or finished its TLS handshake) this long after connecting (%(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=_positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections served at once; more get 503 too_many_connections "
        "(lowered to fit the open-file limit) (%(default)s)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=_positive_int,
        default=MAX_MESSAGE_BYTES,
        metavar="BYTES",
        help="largest `data` of one message; larger gets 413 and stores nothing "
        "of its batch (%(default)s)",
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    store = create_store(
        args.engine,
        db=args.db,
        synchronous=args.synchronous,
        nats_urls=args.nats,
        nats_prefix=args.nats_prefix,
        replicas=args.replicas,
        dedupe_window_ms=max(1, round(args.dedupe_window * 1000)),
        dedupe_max_ids=args.dedupe_max_ids,
    )
    if args.key and not args.cert:
        raise ValueError("--key needs --cert")
    # Handled from here on, so a SIGTERM while the store opens (which can take a
    # while) still ends in a clean shutdown once it is open, not in a killed process.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    running = await start_server(
        store,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        ssl_context=tls_context(args.cert, args.key) if args.cert else None,
        max_waiting=args.max_waiting,
        max_long_polls=args.max_long_polls,
        idle_timeout=args.idle_timeout,
        header_timeout=args.header_timeout,
        max_connections=args.max_connections,
        max_message_bytes=args.max_message_bytes,
    )
    auth = "on" if args.api_key else "off"
    where = f"db {args.db}" if args.engine == "sqlite" else f"jetstream, prefix {args.nats_prefix}"
    loop_name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    log.info(
        "streamkit listening on %s (%s, auth %s, %s loop)", running.url, where, auth, loop_name
    )
    try:
        await stop.wait()
    finally:
        log.info("streamkit shutting down")
        await running.close()


def run(args: argparse.Namespace) -> int:
    """Configure logging and run `serve`; returns the exit code."""
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    quiet_malformed_requests()
    raise_open_file_limit()
    tune_gc()
    try:
        loop = event_loop.resolve(args.loop)
        event_loop.run(serve(args), loop)
    except KeyboardInterrupt:  # signal handlers unavailable (Windows)
        pass
    except (
        OSError,
        ValueError,
        sqlite3.Error,
        StoreUnavailable,  # + NATS unreachable
        event_loop.LoopUnavailable,
    ) as exc:
        log.error("could not start: %s", exc)
        return 1
    return 0


def main(
    argv: list[str] | None = None,
    *,
    prog: str = "python -m streamkit.server",
    api_key: str | None = None,
) -> int:
    """Entry point of ``python -m streamkit.server`` and ``streamkit serve``.

    ``api_key`` is the default of ``--api-key`` (the CLI passes its global one).
    """
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    add_arguments(parser)
    if api_key:
        parser.set_defaults(api_key=api_key)
    return run(parser.parse_args(argv))
