"""The ``streamkit`` command: run a server, and publish, read and administer streams.

```console
$ streamkit serve                                   # the server (no extra needed)
$ streamkit compact --db streamkit.db               # shrink a stopped server's file
$ streamkit streams create orders
$ seq 1000 | streamkit publish orders --key orders.eu
$ streamkit tail orders --follow
$ streamkit consumers create orders billing --filter 'orders.>'
$ streamkit consume orders billing --max 10
$ streamkit tail orders --since 10m                # replay the last ten minutes
$ streamkit dead list orders billing               # what billing gave up on
$ streamkit stats
$ streamkit backup --db streamkit.db backup.db        # a live database, consistently
```

Every command but ``serve``, ``compact`` and ``backup`` talks to the server at
``--url`` (default ``$STREAMKIT_URL``, else ``http://localhost:7376``; an
``http://`` or ``https://`` URL) with ``--api-key`` (default
``$STREAMKIT_API_KEY``). What draws (the tables of ``stats``, ``streams list``,
``consumers list`` and ``publish``'s progress bar) needs the ``[cli]`` extra
(rich); ``tail``, ``consume``, the ``--json`` outputs and the rest do not.
Exit codes: 0 done, 1 the server refused, the network failed or the input was
bad (one line on stderr, no traceback), 2 bad usage (a bad ``--url`` too), 130
interrupted (Ctrl-C), 141 stdout closed early (``streamkit tail s | head``). The
commands themselves are in `streamkit.cli.commands`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime

from streamkit import __version__
from streamkit._http.urls import server_url
from streamkit.cli.formats import FORMATS, InputError
from streamkit.cli.since import parse_since
from streamkit.client import DEFAULT_URL
from streamkit.errors import InvalidURL, StreamkitError, TransportError
from streamkit.protocol.keys import filter_problem, key_problem, name_problem
from streamkit.publisher import PublisherConfig

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

RICH_HINT = "pip install 'aiostreamkit[cli]'"


# Argument types: a bad value is a usage error (exit 2) with a clear message.


def _checked(problem_of: Callable[[object], str | None], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        problem = problem_of(value)
        if problem:
            raise argparse.ArgumentTypeError(f"invalid {what} {value!r}: {problem}")
        return value

    check.__name__ = what
    return check


_name = _checked(name_problem, "name")
_key = _checked(key_problem, "key")
_filter = _checked(filter_problem, "filter")


def _count(value: str) -> int:
    """A positive integer."""
    try:
        number = int(value, 10)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}")
    return number


def _seq(value: str) -> int:
    """A non-negative integer."""
    try:
        number = int(value, 10)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be a seq (an integer >= 0), not {value!r}")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {value!r}")
    return number


def _since(value: str) -> datetime:
    try:
        return parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _start(value: str) -> str | int | datetime:
    if value in ("all", "new"):
        return value
    if value.isdigit():
        return _seq(value)
    return _since(value)


# The parser.


def _client_options() -> argparse.ArgumentParser:
    """``--url`` and ``--api-key``, also accepted after the command name."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=f"server URL (default: $STREAMKIT_URL, else {DEFAULT_URL})",
    )
    group.add_argument(
        "--api-key",
        dest="client_api_key",
        metavar="KEY",
        default=argparse.SUPPRESS,
        help="API key sent as a bearer token (default: $STREAMKIT_API_KEY)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The ``streamkit`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="streamkit",
        description="Durable event streams: run a server, publish, read and administer.",
        epilog="Exit codes: 0 ok, 1 API or network error, 2 usage error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"streamkit {__version__}")
    parser.add_argument(
        "--url", default=None, help=f"server URL (default: $STREAMKIT_URL, else {DEFAULT_URL})"
    )
    parser.add_argument(
        "--api-key",
        dest="client_api_key",
        metavar="KEY",
        default=None,
        help="API key sent as a bearer token (default: $STREAMKIT_API_KEY)",
    )
    client = [_client_options()]
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # The server parses its own options (`streamkit serve --help` lists them): the
    # other commands never import it.
    commands.add_parser("serve", help="run the streamkit server", add_help=False)
    commands.add_parser(
        "compact", help="shrink a stopped server's database file (--db PATH)", add_help=False
    )

    p = commands.add_parser(
        "backup",
        help="copy a SQLite database consistently, even while its server runs",
        description="Copy the database at --db to OUT with SQLite's online backup: the copy "
        "is the database as it was when the backup began, taken a few pages at a time "
        "without stopping the server. To restore: stop the server, delete DB-wal and DB-shm, "
        "copy OUT to DB, start the server.",
    )
    p.add_argument("--db", default="streamkit.db", help="the server's database (streamkit.db)")
    p.add_argument("out", metavar="OUT", help="the backup file to write (replaced if it exists)")
    p.add_argument(
        "--pages", type=_count, default=256, metavar="N", help="pages copied per step (256)"
    )
    p.set_defaults(handler="backup")

    p = commands.add_parser(
        "publish",
        parents=client,
        help="publish one event per input line",
        description="Publish one event per line of FILE (default: stdin). Blank lines are "
        "skipped. Formats: auto (a JSON line is JSON data, any other line text), json, text, "
        'envelope (JSON objects {"data", "key"?, "id"?, "headers"?}, as `tail` prints them). '
        "Events are stored in line order.",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("file", nargs="?", metavar="FILE", help="input file, or - for stdin")
    p.add_argument("-f", "--file", dest="file_option", metavar="FILE", help="same as FILE")
    p.add_argument(
        "-k",
        "--key",
        type=_key,
        help="key of events without their own (default: the stream's name)",
    )
    p.add_argument(
        "--format", choices=FORMATS, default="auto", help="how lines become events (auto)"
    )
    retry_deadline = PublisherConfig.retry_deadline
    p.add_argument(
        "--retry-deadline",
        type=_seconds,
        default=retry_deadline,
        metavar="SECONDS",
        help="how long a batch is retried through network errors and an overloaded server "
        f"before its events count as not stored ({retry_deadline:g})",
    )
    p.set_defaults(handler="publish")

    p = commands.add_parser(
        "tail",
        parents=client,
        help="print a stream's events as JSON lines",
        description="Print the last events of a stream (or every event from --from) as JSON "
        "lines; --follow keeps printing new events as they are stored.",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--from", dest="from_seq", type=_seq, metavar="SEQ", help="start at this seq (inclusive)"
    )
    start.add_argument(
        "--since",
        type=_since,
        metavar="WHEN",
        help="start at the first event stored since WHEN: a duration back from now "
        "(90s, 10m, 1h30m, 2d) or an RFC 3339 timestamp",
    )
    p.add_argument(
        "-n",
        "--lines",
        type=_seq,
        default=10,
        metavar="N",
        help="without --from/--since: how many of the newest events to print first (10)",
    )
    p.add_argument("--key-pattern", type=_filter, metavar="P", help="only keys matching P")
    p.set_defaults(handler="tail")

    p = commands.add_parser(
        "consume",
        parents=client,
        help="receive, print and ack events of a consumer",
        description="Join a durable consumer: print each event as a JSON line, then ack it. "
        "Runs until --max events or Ctrl-C; unacked deliveries are handed back on exit.",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("consumer", type=_name, metavar="CONSUMER")
    p.add_argument("--max", type=_count, metavar="N", help="stop after N events")
    p.set_defaults(handler="consume")

    p = commands.add_parser(
        "stats",
        parents=client,
        help="streams and consumers with their counts",
        description="Print every stream (or the STREAMs given) with its message count, "
        "consumers and storage, and each consumer with its pending, in-flight and dead "
        "events: as tables (needs rich), or with --json as one JSON object.",
    )
    p.add_argument("streams", nargs="*", type=_name, metavar="STREAM", help="only these")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler="stats")

    streams = commands.add_parser(
        "streams",
        help="create, delete and list streams",
        description="Create, delete and list streams: streamkit streams ACTION --help.",
    )
    actions = streams.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "create",
        parents=client,
        help="create a stream",
        description="Create the stream NAME; with --exist-ok, succeed if it exists already.",
    )
    p.add_argument("name", type=_name, metavar="NAME")
    p.add_argument("--exist-ok", action="store_true", help="succeed if it exists")
    p.add_argument(
        "--one-message-per-key", action="store_true", help="keep only the latest event per key"
    )
    p.set_defaults(handler="streams_create")
    p = actions.add_parser(
        "delete",
        parents=client,
        help="delete a stream and its consumers",
        description="Delete the stream NAME with its events and consumers.",
    )
    p.add_argument("name", type=_name, metavar="NAME")
    p.add_argument("--missing-ok", action="store_true", help="succeed if it does not exist")
    p.set_defaults(handler="streams_delete")
    p = actions.add_parser(
        "list",
        parents=client,
        help="list streams",
        description="List the streams with their counts: a table (needs rich), or with "
        "--json one JSON object per line.",
    )
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.set_defaults(handler="streams_list")

    consumers = commands.add_parser(
        "consumers",
        help="create, delete and list consumers",
        description="Create, delete and list a stream's durable consumers: "
        "streamkit consumers ACTION --help.",
    )
    actions = consumers.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "create",
        parents=client,
        help="create a durable consumer",
        description="Create the durable consumer NAME of STREAM: it receives the events "
        "whose keys match --filter, from --start on; competing processes share its events.",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("name", type=_name, metavar="NAME")
    p.add_argument("--filter", type=_filter, default=">", help="key filter (default: >, all)")
    p.add_argument(
        "--start",
        type=_start,
        help="all (default), new, a seq, or a time: a duration back from now (10m) or RFC 3339",
    )
    p.add_argument("--ack-wait", type=_seconds, metavar="SECONDS", help="ack deadline (30)")
    p.add_argument("--max-deliver", type=_count, metavar="N", help="dead-letter after N tries")
    p.add_argument("--max-ack-pending", type=_count, metavar="N", help="in-flight limit")
    p.add_argument("--exist-ok", action="store_true", help="succeed if it exists")
    p.set_defaults(handler="consumers_create")
    p = actions.add_parser(
        "delete",
        parents=client,
        help="delete a consumer",
        description="Delete the consumer NAME of STREAM; the stream's events stay.",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("name", type=_name, metavar="NAME")
    p.add_argument("--missing-ok", action="store_true", help="succeed if it does not exist")
    p.set_defaults(handler="consumers_delete")
    p = actions.add_parser(
        "list",
        parents=client,
        help="list a stream's consumers",
        description="List the consumers of STREAM with their settings: a table (needs "
        "rich), or with --json one JSON object per line.",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.set_defaults(handler="consumers_list")
    p = actions.add_parser(
        "reset",
        parents=client,
        help="seek: deliver again from --start",
        description="Drop the consumer's in-flight, waiting and dead-lettered deliveries and "
        "deliver from --start on: all, new, a seq, or a time (a duration back from now, "
        "like 10m, or an RFC 3339 timestamp).",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("name", type=_name, metavar="NAME")
    p.add_argument("--start", type=_start, required=True, help="all, new, a seq or a time")
    p.set_defaults(handler="consumers_reset")

    dead = commands.add_parser(
        "dead",
        help="list, redrive or discard a consumer's dead letters",
        description="Dead letters are events a consumer gave up on after --max-deliver "
        "deliveries. They stay in the stream; these commands act on the consumer's list.",
    )
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "list",
        parents=client,
        help="print dead letters as JSON lines",
        description="Print each dead letter as a JSON line, by seq: the event as `tail` "
        "prints it, with its delivery_count and last_error.",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("consumer", type=_name, metavar="CONSUMER")
    p.add_argument("-n", "--limit", type=_count, metavar="N", help="print at most N")
    p.set_defaults(handler="dead_list")
    p = actions.add_parser(
        "redrive",
        parents=client,
        help="deliver dead letters again",
        description="Put dead letters back to be delivered, each with a fresh --max-deliver "
        "count: those given with --seq, else every one. Prints how many went back.",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("consumer", type=_name, metavar="CONSUMER")
    p.add_argument(
        "--seq", dest="seqs", type=_count, action="append", metavar="SEQ", help="only this one"
    )
    p.set_defaults(handler="dead_redrive")
    p = actions.add_parser(
        "discard",
        parents=client,
        help="forget dead letters, as if they were acked",
        description="Forget dead letters, as if the consumer had acked them: those given with "
        "--seq, or every one with --all. The events stay in the stream.",
    )
    p.add_argument("stream", type=_name, metavar="STREAM")
    p.add_argument("consumer", type=_name, metavar="CONSUMER")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--seq", dest="seqs", type=_count, action="append", metavar="SEQ", help="this one"
    )
    which.add_argument("--all", action="store_true", help="every dead letter")
    p.set_defaults(handler="dead_discard")
    return parser


# Running.


def _error(message: str) -> int:
    print(f"streamkit: error: {message}", file=sys.stderr)
    return EXIT_FAILED


def _serve(args: argparse.Namespace, argv: list[str]) -> int:
    from streamkit.server import serve  # the server's modules load for this command only

    # `streamkit --api-key K serve` means the same as `streamkit serve --api-key K`.
    return serve.main(argv, prog="streamkit serve", api_key=args.client_api_key)


def _compact(argv: list[str]) -> int:
    from streamkit.cli import files  # works on the file, offline: no client, no rich

    return files.compact(argv)


def _backup(args: argparse.Namespace) -> int:
    from streamkit.cli import files  # works on the file, offline: no client, no rich

    try:
        return files.backup(args.db, args.out, pages=args.pages)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _draws(args: argparse.Namespace) -> bool:
    """Whether the command draws with rich: a table (no ``--json``), publish's progress bar."""
    return args.handler == "publish" or getattr(args, "json", True) is False


def _run_command(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("STREAMKIT_URL") or DEFAULT_URL
    try:
        server_url(url)
    except InvalidURL as exc:
        print(f"streamkit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if _draws(args) and importlib.util.find_spec("rich") is None:
        return _error(f"`streamkit {args.command}` needs rich: {RICH_HINT}")
    from streamkit.cli import commands  # rich only when a command draws

    try:
        return asyncio.run(commands.run(args.handler, args, url=url))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`streamkit tail s | head`): stop quietly, as other tools do.
        with contextlib.suppress(OSError, ValueError), open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except TransportError as exc:
        return _error(f"{url}: {exc}")
    except (StreamkitError, InputError, commands.CommandError, OSError) as exc:
        return _error(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamkit`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args, rest = parser.parse_known_args(argv)
        if args.command == "serve":
            return _serve(args, rest)
        if args.command == "compact":
            return _compact(rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    except SystemExit as exc:  # --help, --version, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "backup":
        return _backup(args)
    return _run_command(args)
