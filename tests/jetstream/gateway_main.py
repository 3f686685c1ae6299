"""A JetStream gateway process for tests: ``python gateway_main.py NATS_URL PORT PREFIX``.

Stands in for ``python -m streamkit.server --engine jetstream`` until the CLI
has the engine flags.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from streamkit.server.engines import create_store
from streamkit.server.runner import start_server


async def main(nats_url: str, port: int, prefix: str) -> None:
    store = create_store("jetstream", nats_urls=nats_url, nats_prefix=prefix)
    running = await start_server(store, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await running.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
