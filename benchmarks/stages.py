"""``python -m benchmarks.stages``: microseconds per event of each stage of publish and receive+ack.

Each stage is the real function the client or the server runs, called in this
process on a batch of 1000 100-byte events over 16 keys, without the network:
what an end-to-end run spends per event, split up. The SQLite stages run
against a file in a temporary directory (WAL, ``synchronous=NORMAL``, as the
server runs) and include the commit, not the WAL checkpoints (which the server
runs on another thread). Every figure is the least CPU time of
``--repeat`` runs, which keeps it fairly stable on a busy machine; the stages that are
not here (HTTP parsing and writing in aiohttp, the event loop, thread hand-offs)
are what an end-to-end run spends on top, found with a CPU profiler.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, cast

import orjson

from streamkit import Nack
from streamkit._http.api import API, body_pieces
from streamkit.models import Event, ack_fields_from_runs, new_event_id
from streamkit.publisher import Publisher
from streamkit.server import validation
from streamkit.server.responses import json_response
from streamkit.server.store.base import ConsumerSpec, StreamOptions
from streamkit.server.store.sqlite.appends import PreparedBatch, prepare
from streamkit.server.store.sqlite.rows import ConsumerMeta
from streamkit.server.store.sqlite.schema import WAL_SIZE_LIMIT, connect
from streamkit.server.store.sqlite.writes import WriteOps

BATCH = 1000
PAYLOAD = "x" * 100
KEYS = [f"bench.k{i}" for i in range(16)]


def best_us_per_event(
    fn: Callable[[Any], object], repeat: int, setup: Callable[[], Any] = lambda: None
) -> float:
    """The least CPU time of ``repeat`` calls ``fn(setup())``, in µs per event of a batch.

    ``setup`` runs outside the clock, before each call. CPU time, not wall time,
    so that other processes on a busy machine barely move the figures.
    """
    best = float("inf")
    for _ in range(repeat):
        arg = setup()
        started = time.process_time()
        fn(arg)
        best = min(best, time.process_time() - started)
    return best / BATCH * 1e6


def _events() -> list[Event]:
    return [Event(PAYLOAD, key=KEYS[i % len(KEYS)]) for i in range(BATCH)]


def _new_messages() -> list[Any]:
    """A batch of wire messages as the server gets them, with ids it has not seen."""
    return [e.to_wire("s") for e in _events()]


class _Db:
    """A WriteOps over a fresh file database, with one stream and one consumer."""

    def __init__(self, directory: Path) -> None:
        # As the server's writer: its checkpoints run on another thread.
        self.conn = connect(directory / "stages.db", "normal", autocheckpoint_bytes=WAL_SIZE_LIMIT)
        self.ops = WriteOps(120_000)
        self.transaction(self.ops.setup)
        meta, _ = self.transaction(lambda c: self.ops.create_stream(c, "s", StreamOptions()))
        self.sid = meta.sid
        spec = ConsumerSpec(name="c", filter_key_pattern=">", max_ack_pending=1_000_000)
        self.consumer: ConsumerMeta = self.transaction(
            lambda c: self.ops.create_consumer(c, self.sid, spec)
        )[0]

    def transaction(self, job: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``job`` in one transaction with a savepoint, as the writer thread does."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SAVEPOINT job")
        value = job(conn)
        conn.execute("RELEASE job")
        conn.execute("COMMIT")
        self.ops.commit()
        return value


def _runs_reply(count: int) -> bytes:
    """The server's answer to a publish of ``count`` messages stored whole (``?acks=runs``)."""
    runs = [[1, count, datetime.now(timezone.utc)]]
    body = json_response({"data": {"published": count, "ack_runs": runs}}).body
    assert isinstance(body, bytes)
    return body


class _InstantAPI:
    """Stands in for `API` in a `Publisher`: builds the body as `API.send_for_seqs` does
    and decodes a canned reply of the server's."""

    transport = None
    takes_split = False

    def __init__(self) -> None:
        self.replies = [_runs_reply(n) for n in range(BATCH + 1)]

    async def send_for_seqs(
        self,
        stream: str,
        messages: Sequence[str],
        *,
        blobs: Sequence[bytes] = (),
        retry: bool = True,
    ) -> tuple[list[int], list[datetime]]:
        body_pieces(messages)
        runs = orjson.loads(self.replies[len(messages)])["data"]["ack_runs"]
        return ack_fields_from_runs(runs, len(messages))


def publisher_us(repeat: int) -> float:
    """Per-event µs of `Publisher.publish` + ``flush`` over prebuilt events, fake API."""
    publisher: Publisher | None = None
    nacks: list[Nack] = []

    async def publish_batch(events: list[Event]) -> None:
        await publisher_of().publish(events, on_nack=nacks.append)
        await publisher_of().flush()
        if nacks:
            raise RuntimeError(f"the publisher nacked {len(nacks)} events: {nacks[0]}")

    def publisher_of() -> Publisher:
        nonlocal publisher
        if publisher is None:
            publisher = Publisher(cast(API, _InstantAPI()), "s")
        return publisher

    loop = asyncio.new_event_loop()
    try:
        return best_us_per_event(
            lambda events: loop.run_until_complete(publish_batch(events)), repeat, _events
        )
    finally:
        if publisher is not None:
            loop.run_until_complete(publisher.close())
        loop.close()


def publish_stages(repeat: int, db: _Db) -> dict[str, float]:
    """Per-event µs of each publish stage, client then server."""
    events = _events()
    wire = [e.to_wire("s") for e in events]
    texts = [orjson.dumps(message).decode() for message in wire]
    body = b"".join(body_pieces(texts))
    parsed = orjson.loads(body)
    messages = validation.publish_body(parsed)

    def store_publish(prepared: PreparedBatch) -> None:
        db.transaction(lambda c: db.ops.publish(c, db.sid, prepared))

    batch = prepare(db.sid, messages)
    stored = db.transaction(lambda c: db.ops.publish(c, db.sid, batch))
    runs = [[stored.first_seq, stored.published, datetime.now(timezone.utc)]]
    reply = _runs_reply(BATCH)

    def decode_acks(_: None) -> None:
        ack_fields_from_runs(orjson.loads(reply)["data"]["ack_runs"], BATCH)

    stages = {
        "client: Event(data, key=...)": best_us_per_event(lambda _: _events(), repeat),
        "  of which new_event_id()": best_us_per_event(
            lambda _: [new_event_id() for _ in range(BATCH)], repeat
        ),
        "client: Publisher publish+flush, fake API": publisher_us(repeat),
        "  of which Event.to_wire()": best_us_per_event(
            lambda _: [e.to_wire("s") for e in events], repeat
        ),
        "  of which encoding each message": best_us_per_event(
            lambda _: [orjson.dumps(message).decode() for message in wire], repeat
        ),
        "  of which body_pieces()": best_us_per_event(lambda _: body_pieces(texts), repeat),
        "  of which decoding the ack runs": best_us_per_event(decode_acks, repeat),
        "server: orjson.loads(body)": best_us_per_event(lambda _: orjson.loads(body), repeat),
        "server: validation.publish_body()": best_us_per_event(
            validation.publish_body, repeat, lambda: parsed
        ),
        "server: prepare the batch (event loop)": best_us_per_event(
            lambda fresh: prepare(db.sid, fresh), repeat, _new_messages
        ),
        "server: store publish + commit (writer)": best_us_per_event(
            store_publish, repeat, lambda: prepare(db.sid, _new_messages())
        ),
        "server: response JSON (ack runs)": best_us_per_event(
            lambda _: json_response({"data": {"published": BATCH, "ack_runs": runs}}), repeat
        ),
    }
    return stages


def receive_stages(repeat: int, db: _Db) -> dict[str, float]:
    """Per-event µs of each receive+ack stage on the server (and decoding on the client)."""
    c = db.consumer
    for _ in range(repeat * 2 + 2):  # enough stored messages for every timed receive
        db.transaction(partial(db.ops.publish, sid=db.sid, batch=prepare(db.sid, _new_messages())))

    def receive(_: None = None) -> list[Any]:
        result = db.transaction(lambda conn: db.ops.receive(conn, c, BATCH))
        return list(result.deliveries)

    def received_ids() -> list[str]:
        return [d["ack_id"] for d in receive()]

    def ack(ids: list[str]) -> None:
        db.transaction(lambda conn: db.ops.ack(conn, c, ids))

    receive_us = best_us_per_event(receive, repeat)
    ack_us = best_us_per_event(ack, repeat, received_ids)
    deliveries = receive()
    body = json_response({"data": deliveries}).body
    assert isinstance(body, bytes)
    ack_ids = [d["ack_id"] for d in deliveries]
    ack_body = orjson.dumps({"ack_ids": ack_ids})

    def decode(_: None) -> None:
        for item in orjson.loads(body)["data"]:
            Event.from_wire(item["message"], stream="s")

    return {
        "server: store receive + commit": receive_us,
        "server: response JSON (deliveries)": best_us_per_event(
            lambda _: json_response({"data": deliveries}), repeat
        ),
        "client: decode + Event.from_wire()": best_us_per_event(decode, repeat),
        "client: ack body": best_us_per_event(lambda _: orjson.dumps({"ack_ids": ack_ids}), repeat),
        "server: ack body + validation": best_us_per_event(
            lambda _: validation.ack_ids_body(orjson.loads(ack_body)), repeat
        ),
        "server: store ack + commit": ack_us,
    }


def main(argv: list[str] | None = None) -> None:
    """Print the per-event cost of every stage."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages", description=__doc__)
    parser.add_argument("--repeat", type=int, default=15, help="timings per stage (best kept)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="streamkit-stages-") as tmp:
        db = _Db(Path(tmp))
        for title, stages in (
            ("publish", publish_stages(args.repeat, db)),
            ("receive + ack", receive_stages(args.repeat, db)),
        ):
            print(f"{title} (µs per event, batches of {BATCH}, best of {args.repeat})")
            for name, us in stages.items():
                print(f"  {name:<40} {us:7.2f}")
            total = sum(us for name, us in stages.items() if not name.startswith(" "))
            print(f"  {'total':<40} {total:7.2f}")
        db.conn.close()


if __name__ == "__main__":
    main()
