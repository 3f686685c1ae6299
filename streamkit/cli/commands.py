"""What each ``streamkit`` command does; `streamkit.cli` parses the arguments and maps
errors to exit codes. Only what draws (tables, the progress bar) needs rich, the
``[cli]`` extra: that is in `streamkit.cli.tables`, imported by the commands that
draw; ``tail``, ``consume`` and every ``--json`` output run without it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from streamkit.cli import dead
from streamkit.cli.formats import InputError, event_from_line, render_event
from streamkit.cli.input import LineReader
from streamkit.client import AsyncClient, connect
from streamkit.errors import Nack, NotFound
from streamkit.models import Ack, Consumer, Event, Stream
from streamkit.publisher import PublisherConfig
from streamkit.reads.catchup import BACKWARD

__all__ = ["COMMANDS", "CommandError", "run"]

Command = Callable[[AsyncClient, argparse.Namespace], Awaitable[int]]


class CommandError(Exception):
    """A command failed in a way the user should read about (exit code 1)."""


async def run(handler: str, args: argparse.Namespace, *, url: str) -> int:
    """Connect to ``url`` and run the command named ``handler``; return the exit code."""
    # One publisher lane: `publish` stores events in line order, not just in order per key.
    ordered = PublisherConfig(max_in_flight=1)
    if handler == "publish":
        ordered = dataclasses.replace(ordered, retry_deadline=args.retry_deadline)
    async with connect(url, api_key=args.client_api_key, publisher=ordered) as client:
        return await COMMANDS[handler](client, args)


def _emit(line: str, *, flush: bool) -> None:
    sys.stdout.write(line + "\n")
    if flush:
        sys.stdout.flush()


# publish


@dataclass
class _Tally:
    """How publishing went, counted by the ack and nack callbacks."""

    queued: int = 0
    acked: int = 0
    nacked: int = 0
    first_nack: Nack | None = None

    def on_ack(self, ack: Ack) -> None:
        self.acked += 1

    def on_nack(self, nack: Nack) -> None:
        self.nacked += 1
        self.first_nack = self.first_nack or nack


@contextlib.contextmanager
def _open_input(args: argparse.Namespace) -> Iterator[BinaryIO]:
    if args.file is not None and args.file_option is not None:
        raise InputError("give the input either as FILE or as --file, not both")
    path = args.file if args.file is not None else args.file_option
    if path is None or path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as source:
        yield source


async def _every(interval: float, action: Callable[[], None]) -> None:
    while True:
        action()
        await asyncio.sleep(interval)


async def _publish_lines(
    client: AsyncClient, args: argparse.Namespace, reader: LineReader, tally: _Tally
) -> InputError | None:
    """Publish every line; on a bad line stop there. Either way wait until all is settled."""
    failure: InputError | None = None
    lineno = 0
    try:
        async for lines in reader.batches():
            events: list[Event] = []
            try:
                for line in lines:
                    lineno += 1
                    event = event_from_line(line, args.format, key=args.key, lineno=lineno)
                    if event is not None:
                        events.append(event)
            finally:  # the lines before a bad one are still published
                if events:
                    await client.publish(
                        args.stream, events, on_ack=tally.on_ack, on_nack=tally.on_nack
                    )
                    tally.queued += len(events)
    except InputError as exc:
        failure = exc
    await client.flush(timeout=None)
    return failure


async def publish(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit publish STREAM [FILE]``: one event per line, a progress bar, a rate line."""
    from streamkit.cli import tables  # rich: the progress bar

    with _open_input(args) as source:
        reader = LineReader(source)
        tally = _Tally()
        progress = tables.publish_progress()
        started = time.perf_counter()

        def refresh() -> None:
            elapsed = time.perf_counter() - started
            progress.update(
                task,
                completed=reader.bytes_read,
                acked=tally.acked,
                rate=tally.acked / elapsed if elapsed > 0 else 0.0,
            )

        with progress:
            task = progress.add_task(
                f"publishing to {args.stream}", total=reader.total, acked=0, rate=0.0
            )
            ticker = asyncio.create_task(_every(0.1, refresh), name="streamkit-cli-progress")
            try:
                failure = await _publish_lines(client, args, reader, tally)
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            refresh()
    elapsed = time.perf_counter() - started
    rate = tally.acked / elapsed if elapsed > 0 else 0.0
    noun = "event" if tally.acked == 1 else "events"
    summary = f"published {tally.acked:,} {noun} to {args.stream} in {elapsed:.2f}s"
    summary += f" ({rate:,.0f} events/s)"
    if tally.nacked:
        summary += f", {tally.nacked:,} not stored"
    _emit(summary, flush=True)
    if failure is not None:
        raise failure
    if tally.first_nack is not None:
        raise CommandError(f"{tally.nacked:,} event(s) not stored; first: {tally.first_nack}")
    return 0


# tail and consume


async def tail(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit tail STREAM``: the newest events (or all from ``--from``); with
    ``--follow``, then every new one (`AsyncClient.tail`)."""
    stream, pattern, follow = args.stream, args.key_pattern, args.follow
    if args.since is not None:  # every event stored from then on
        if follow:
            events = client.tail(stream, key_pattern=pattern, from_time=args.since)
        else:
            events = client.iter(stream, from_time=args.since, key_pattern=pattern)
        return await _print_events(events, follow)
    if args.from_seq is not None:
        start = args.from_seq
    else:
        newest = await client.get(stream, max_count=1, direction=BACKWARD)
        end = (newest[0].seq or 0) if newest else 0
        if args.lines and end:
            history = await client.get(
                stream, max_count=args.lines, from_seq=end, direction=BACKWARD, key_pattern=pattern
            )
            for event in reversed(history):
                _emit(render_event(event), flush=follow)
        if not follow:
            return 0
        start = end + 1
    if follow:  # live, over server-sent events; resumes by itself after a dropped connection
        events = client.tail(stream, key_pattern=pattern, from_seq=start)
    else:
        events = client.iter(stream, from_seq=start, key_pattern=pattern)
    return await _print_events(events, follow)


async def _print_events(events: AsyncIterator[Event], follow: bool) -> int:
    try:
        async for event in events:
            _emit(render_event(event), flush=follow)
    finally:  # close the stream now (a closed pipe, Ctrl-C), not at the loop's shutdown
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    return 0


async def consume(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit consume STREAM CONSUMER``: print each delivery, then ack it."""
    limit: int | None = args.max
    handled = 0
    batch_size = min(limit, 100) if limit else 100
    subscription = client.subscribe(
        args.stream, consumer=args.consumer, batch_size=batch_size, prefetch=1
    )
    async with subscription:
        async for event in subscription:
            _emit(render_event(event, delivery=True), flush=True)
            await event.ack()
            handled += 1
            if limit is not None and handled >= limit:
                break
    return 0


# stats, streams, consumers


def _kind(consumer: Consumer) -> str:
    return "ephemeral" if consumer.raw.get("ephemeral") else "durable"


def _stream_json(stream: Stream) -> dict[str, Any]:
    return {
        "id": stream.id,
        "name": stream.name,
        "message_count": stream.message_count,
        "consumer_count": stream.consumer_count,
        "storage_size": stream.storage_size,
        "inserted_at": stream.inserted_at,
    }


def _consumer_json(consumer: Consumer) -> dict[str, Any]:
    return {
        "id": consumer.id,
        "name": consumer.name,
        "filter_key_pattern": consumer.filter_key_pattern,
        "kind": _kind(consumer),
        "ack_wait_ms": consumer.ack_wait_ms,
        "max_ack_pending": consumer.max_ack_pending,
        "max_deliver": consumer.max_deliver,
        "pending": consumer.pending,
        "in_flight": consumer.in_flight,
        "dead": consumer.dead,
    }


def _dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode("utf-8")


async def _consumers_with_stats(client: AsyncClient, stream: str) -> list[Consumer]:
    """A stream's consumers, each with its stats (a listing has none)."""

    async def detailed(consumer: Consumer) -> Consumer:
        try:
            return await client.get_consumer(stream, consumer.name)
        except NotFound:  # deleted meanwhile (an ephemeral one expired, say)
            return consumer

    listed = await client.list_consumers(stream)
    return list(await asyncio.gather(*(detailed(c) for c in listed)))


async def stats(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit stats [STREAM ...]``: streams and consumers with their counts."""
    if args.streams:
        streams = list(await asyncio.gather(*(client.get_stream(s) for s in args.streams)))
    else:
        streams = await client.list_streams()
    consumers = await asyncio.gather(*(_consumers_with_stats(client, s.name) for s in streams))
    if args.json:
        body = [
            {**_stream_json(s), "consumers": [_consumer_json(c) for c in cs]}
            for s, cs in zip(streams, consumers, strict=True)
        ]
        _emit(_dumps({"streams": body}), flush=True)
        return 0
    from streamkit.cli import tables  # rich: tables

    pairs = zip(streams, consumers, strict=True)
    rows = [(s.name, _consumer_json(c)) for s, cs in pairs for c in cs]
    tables.show(
        tables.streams_table([_stream_json(s) for s in streams]), tables.consumer_stats_table(rows)
    )
    return 0


async def streams_create(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit streams create NAME``."""
    stream = await client.create_stream(
        args.name,
        exist_ok=args.exist_ok,
        one_message_per_key=args.one_message_per_key or None,
    )
    verb = "stream ready:" if args.exist_ok else "created stream"
    _emit(f"{verb} {stream.name} (id {stream.id})", flush=True)
    return 0


async def streams_delete(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit streams delete NAME``."""
    await client.delete_stream(args.name, missing_ok=args.missing_ok)
    _emit(f"deleted stream {args.name}", flush=True)
    return 0


async def streams_list(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit streams list``."""
    streams = await client.list_streams()
    if args.json:
        for s in streams:
            _emit(_dumps(_stream_json(s)), flush=False)
    else:
        from streamkit.cli import tables  # rich: tables

        tables.show(tables.streams_table([_stream_json(s) for s in streams]))
    return 0


async def consumers_create(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit consumers create STREAM NAME``."""
    consumer = await client.create_consumer(
        args.stream,
        args.name,
        args.filter,
        exist_ok=args.exist_ok,
        ack_wait=args.ack_wait,
        max_ack_pending=args.max_ack_pending,
        max_deliver=args.max_deliver,
        start=args.start,
    )
    verb = "consumer ready:" if args.exist_ok else "created consumer"
    _emit(
        f"{verb} {consumer.name} on {args.stream} (filter {consumer.filter_key_pattern}, "
        f"id {consumer.id})",
        flush=True,
    )
    return 0


async def consumers_delete(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit consumers delete STREAM NAME``."""
    await client.delete_consumer(args.stream, args.name, missing_ok=args.missing_ok)
    _emit(f"deleted consumer {args.name} of {args.stream}", flush=True)
    return 0


async def consumers_list(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit consumers list STREAM``."""
    consumers = await client.list_consumers(args.stream)
    if args.json:
        for c in consumers:
            _emit(_dumps(_consumer_json(c)), flush=False)
        return 0
    from streamkit.cli import tables  # rich: tables

    tables.show(tables.consumers_table(args.stream, [_consumer_json(c) for c in consumers]))
    return 0


async def consumers_reset(client: AsyncClient, args: argparse.Namespace) -> int:
    """``streamkit consumers reset STREAM NAME --start WHEN``."""
    consumer = await client.reset_consumer(args.stream, args.name, args.start)
    print(f"reset {args.stream}/{consumer.name}: {consumer.pending} pending")
    return 0


COMMANDS: dict[str, Command] = {
    "publish": publish,
    "tail": tail,
    "consume": consume,
    "stats": stats,
    "streams_create": streams_create,
    "streams_delete": streams_delete,
    "streams_list": streams_list,
    "consumers_create": consumers_create,
    "consumers_delete": consumers_delete,
    "consumers_list": consumers_list,
    "consumers_reset": consumers_reset,
    "dead_list": dead.dead_list,
    "dead_redrive": dead.dead_redrive,
    "dead_discard": dead.dead_discard,
}
"""Command handlers by the ``handler`` name the parser sets."""
