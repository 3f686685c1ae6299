"""One competing consumer process for ``test_consumers.py`` (run as a script).

    python consumer_worker.py URL STREAM CONSUMER OUT [--hold-after N]

Joins the durable consumer with ``subscribe`` and acks every event, writing one
line per step to OUT (line-buffered, so a SIGKILL loses nothing written):
``ready`` once it has joined, ``got <seq> <delivery_count>`` when an event is
handed out, ``ack <seq>`` once ``event.ack()`` returned. With ``--hold-after N``
it stops acking after N acks: it takes a few more events without acking them
(mid-batch), waits for its queued acks to be sent, writes ``hold`` and sleeps
until it is killed. SIGTERM closes the subscription cleanly (queued acks are
sent) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import TextIO

import streamkit

HELD = 5
"""Events the holding worker takes without acking."""
ACK_FLUSH_S = 0.5
"""How long the holding worker waits for its queued acks to go out (they go in ~5 ms)."""


async def consume(args: argparse.Namespace, out: TextIO) -> None:
    acked = 0
    held = []
    async with (
        streamkit.connect(args.url, timeout=5.0) as client,
        client.subscribe(args.stream, consumer=args.consumer, batch_size=20, wait_for=0.5) as sub,
    ):
        out.write("ready\n")  # joined and polling
        async for event in sub:
            out.write(f"got {event.seq} {event.delivery_count}\n")
            if args.hold_after is not None and acked >= args.hold_after:
                held.append(event)
                if len(held) >= HELD:
                    await asyncio.sleep(ACK_FLUSH_S)
                    out.write("hold\n")
                    await asyncio.sleep(3600)  # until SIGKILL
                continue
            await asyncio.sleep(0.001)  # a handler doing a little work
            await event.ack()
            out.write(f"ack {event.seq}\n")
            acked += 1


async def run(args: argparse.Namespace, out: TextIO) -> None:
    task = asyncio.create_task(consume(args, out))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    out.write("exit\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("stream")
    parser.add_argument("consumer")
    parser.add_argument("out")
    parser.add_argument("--hold-after", type=int, default=None)
    args = parser.parse_args()
    with open(args.out, "a", buffering=1) as out:
        asyncio.run(run(args, out))


if __name__ == "__main__":
    main()
