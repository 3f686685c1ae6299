"""``streamkit serve`` / ``python -m streamkit.server``: run the server until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sqlite3

from streamkit.server.runner import start_server
from streamkit.server.store.sqlite import SqliteStore

log = logging.getLogger("streamkit.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7376
DEFAULT_DB = "streamkit.db"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options, shared by the CLI and ``python -m streamkit.server``."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (%(default)s)")
    parser.add_argument("--db", default=DEFAULT_DB, help="SQLite database file (%(default)s)")
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
        "--log-level", default="INFO", help="logging level (%(default)s)", type=str.upper
    )


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    store = SqliteStore(args.db, synchronous=args.synchronous)
    running = await start_server(store, host=args.host, port=args.port, api_key=args.api_key)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    auth = "on" if args.api_key else "off"
    log.info("streamkit listening on %s (db %s, auth %s)", running.url, args.db, auth)
    try:
        await stop.wait()
    finally:
        log.info("streamkit shutting down")
        await running.close()


def run(args: argparse.Namespace) -> int:
    """Configure logging and run :func:`serve`; returns the exit code."""
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:  # signal handlers unavailable (Windows)
        pass
    except (OSError, sqlite3.Error) as exc:  # address in use, unusable database file
        log.error("could not start: %s", exc)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m streamkit.server``."""
    parser = argparse.ArgumentParser(prog="python -m streamkit.server", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
