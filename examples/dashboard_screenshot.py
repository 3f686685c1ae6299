"""Run a demo against an embedded server and photograph its dashboard.

Publishes to ``orders`` for ten seconds while ``billing`` acks most of it
and ``audit`` falls behind (one message is dead-lettered), and seven seconds in has
headless Chromium take a screenshot of the consumers page::

    .venv/bin/python examples/dashboard_screenshot.py docs/img/dashboard-consumers.png

Needs Chromium (``apt-get install chromium``). Loopback only; the browser
gets a fresh, empty profile and is gone when the script ends.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

import streamkit
from streamkit import Event
from streamkit.server.runner import start_server
from streamkit.server.store.sqlite.store import SqliteStore

SECONDS = 10
"""How long the demo publishes: enough rate samples for the sparklines."""
SHOT_AT = 7
"""Seconds into the demo when the browser opens the page (while traffic flows)."""


async def traffic(url: str, seconds: float = SECONDS) -> None:
    """Publish; ``billing`` acks at its own pace, ``shipping`` reads nothing, ``audit``
    dead-letters one message (max_deliver=1)."""
    async with streamkit.connect(url) as client:
        await client.create_stream("orders", exist_ok=True)
        await client.create_stream("payments", exist_ok=True)
        await client.create_consumer("orders", "billing", "orders.>", exist_ok=True)
        await client.create_consumer("orders", "shipping", "orders.us.>", exist_ok=True)
        await client.create_consumer("orders", "audit", "orders.eu.>", max_deliver=1)
        n = 0
        for tick in range(int(seconds * 2)):  # bounded: one burst every half second
            burst = [
                Event({"id": n + i, "total": 12.5 + i}, key=f"orders.{('eu', 'us')[i % 2]}.{n + i}")
                for i in range(20 + 10 * (tick % 4))
            ]
            n += len(burst)
            await client.send("orders", burst)
            await client.send("payments", [Event({"order": n}, key="payments.card")])
            taken = await client.receive("orders", "billing", batch_size=25)
            await client.ack("orders", "billing", taken)
            if tick == 0:
                doomed = await client.receive("orders", "audit", batch_size=1)
                await client.nack("orders", "audit", doomed)
            await asyncio.sleep(0.5)


async def screenshot(chromium: str, profile: Path, url: str, out: Path) -> None:
    """The consumers page of ``orders``, as headless Chromium draws it."""
    proc = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        "--window-size=1100,520",
        "--virtual-time-budget=4000",
        f"--screenshot={out}",
        f"{url}/ui/#/streams/orders",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def main(out: Path, *, seconds: float = SECONDS, shot_at: float = SHOT_AT) -> Path:
    """Run the demo for ``seconds``; photograph the page ``shot_at`` seconds in."""
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if chromium is None:
        raise SystemExit("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="streamkit-shot-") as tmp:
        running = await start_server(SqliteStore(Path(tmp) / "db"), dashboard_interval=1.0)
        try:
            demo = asyncio.create_task(traffic(running.url, seconds), name="demo-traffic")
            try:
                await asyncio.sleep(shot_at)
                await screenshot(chromium, Path(tmp) / "profile", running.url, out)
            finally:
                await demo
        finally:
            await running.close()
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "dashboard.png").resolve()))
