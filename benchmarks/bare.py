"""The bare pipeline: what this machine stores per second without streamkit's own work.

``python -m benchmarks.bare --port P --db PATH`` serves ``POST /messages``:
aiohttp.web reads the body, orjson parses it, one writer thread inserts each
request's rows into SQLite (WAL, ``synchronous=NORMAL``, as streamkit's engine
does) and commits all the requests that waited together, and the seqs go back
as JSON. Nothing else: no validation, no dedupe window, no data hash, no
latest seq per key, no metrics on the server; no `Event`, ack, callback or
buffer bound in the client.

`rate` measures it the way `benchmarks.publish.streamkit_rate` measures the
publisher: 100-byte messages over 16 keys, 1000 per request, 4 requests in
flight, every message acked (its seq back). Each message's dict and UUIDv7 id
are made inside the clock, as the publisher's events are; with ``prebuilt``
the bodies are encoded before the clock starts, which is the ceiling issue
#13 quotes for this machine. `streamkit_server_rate` runs the same client
against streamkit's server: that splits streamkit's distance from the bare
pipeline into what its server costs and what its publisher costs.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

import streamkit
from benchmarks import harness
from streamkit.models import new_event_id

PER_REQUEST = 1000
IN_FLIGHT = 4
KEYS = 16
PAYLOAD = "x" * 100

_Job = tuple[list[tuple[int, str, str, str]], asyncio.Future[None], asyncio.AbstractEventLoop]


class Writer:
    """One thread that inserts the rows of each queued request and commits together
    every request that waited meanwhile (group commit)."""

    def __init__(self, path: Path) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS messages"
            " (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, data TEXT NOT NULL, id TEXT)"
        )
        self._thread = threading.Thread(target=self._main, name="bare-writer")
        self._thread.start()

    def put(self, rows: list[tuple[int, str, str, str]]) -> asyncio.Future[None]:
        """(loop) Queue ``rows``; the future resolves once they are committed."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._jobs.put((rows, done, loop))
        return done

    def stop(self) -> None:
        """Finish what is queued and join the thread."""
        self._jobs.put(None)
        self._thread.join()
        self._conn.close()

    def _main(self) -> None:
        stopping = False
        while not stopping:
            waiting = [self._jobs.get()]
            while not self._jobs.empty():
                waiting.append(self._jobs.get())
            group = [job for job in waiting if job is not None]
            stopping = len(group) < len(waiting)
            self._conn.execute("BEGIN")
            for rows, _, _ in group:
                self._conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?)", rows)
            self._conn.execute("COMMIT")
            for _, done, loop in group:
                loop.call_soon_threadsafe(done.set_result, None)


def make_app(path: Path) -> web.Application:
    """The bare server: ``POST /messages`` stores ``{"messages": [...]}``, answers how
    many and their seqs."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    writer = Writer(path)
    last_seq = 0

    async def publish(request: web.Request) -> web.Response:
        nonlocal last_seq
        messages = orjson.loads(await request.read())["messages"]
        first, last = last_seq + 1, last_seq + len(messages)
        last_seq = last
        rows = [(first + i, m["key"], m["data"], m["id"]) for i, m in enumerate(messages)]
        await writer.put(rows)
        body = orjson.dumps({"data": {"published": len(rows), "seqs": [first, last]}})
        return web.Response(body=body, content_type="application/json")

    async def stop_writer(_: web.Application) -> None:
        await asyncio.to_thread(writer.stop)

    app.router.add_post("/messages", publish)
    app.on_cleanup.append(stop_writer)
    return app


@asynccontextmanager
async def serving(scratch: Path) -> AsyncIterator[str]:
    """A bare server in a process of its own on a free port; yields the URL to post to."""
    port = harness.free_port()
    command = [sys.executable, "-m", "benchmarks.bare", "--port", str(port)]
    command += ["--db", str(scratch / "bare.db")]
    process = await harness.start_listening(command, f"http://127.0.0.1:{port}", port)
    try:
        yield process.url + "/messages"
    finally:
        await process.stop()


def _messages(start: int) -> list[dict[str, str]]:
    return [
        {"key": f"bench.k{i % KEYS}", "data": PAYLOAD, "id": new_event_id()}
        for i in range(start, start + PER_REQUEST)
    ]


async def rate(messages_url: str, count: int, *, prebuilt: bool = False) -> float:
    """Messages/s stored and acked through ``POST messages_url``, whose answers say
    ``{"data": {"published": n, ...}}`` (``count`` a multiple of `PER_REQUEST`)."""
    starts = range(0, count, PER_REQUEST)
    bodies = [orjson.dumps({"messages": _messages(start)}) for start in starts] if prebuilt else []
    slots = asyncio.Semaphore(IN_FLIGHT)
    acked = 0

    async def send(http: aiohttp.ClientSession, index: int) -> None:
        nonlocal acked
        async with slots:
            if prebuilt:
                body = bodies[index]
            else:
                body = orjson.dumps({"messages": _messages(starts[index])})
            headers = {"Content-Type": "application/json"}
            async with http.post(messages_url, data=body, headers=headers) as response:
                response.raise_for_status()
                acked += orjson.loads(await response.read())["data"]["published"]

    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        await asyncio.gather(*(send(http, index) for index in range(len(starts))))
        elapsed = time.perf_counter() - started
    if acked != len(starts) * PER_REQUEST:
        raise RuntimeError(f"{messages_url}: {acked} of {len(starts) * PER_REQUEST} acked")
    return acked / elapsed


async def streamkit_server_rate(url: str, count: int) -> float:
    """`rate` of the bare client against streamkit's server (``?acks=runs``, as the
    publisher asks), into a stream of its own that is checked and deleted afterwards."""
    stream = f"bench-bare-{uuid.uuid4().hex[:8]}"
    async with streamkit.connect(url) as client:
        await client.create_stream(stream)
        measured = await rate(f"{url}/api/streams/{stream}/messages?acks=runs", count)
        stored = (await client.get_stream(stream)).message_count
        await client.delete_stream(stream)
    if stored != count:
        raise RuntimeError(f"bare client -> streamkit: {stored} of {count} stored")
    return measured


def main() -> None:
    """Entry point of the server process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    args = parser.parse_args()
    web.run_app(make_app(args.db), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
