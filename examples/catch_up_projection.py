"""A catch-up projection, photon-pump style: read the history, then follow live events.

``client.iter(stream, follow=True)`` reads every stored event page by page and
then keeps long-polling from the same cursor, so the switch from history to
live has no gap and no duplicate. The projection here is account balances;
it needs no consumer on the server: its position is simply the last seq applied.
::

    STREAMKIT_URL=http://localhost:7376 python examples/catch_up_projection.py
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import defaultdict

import streamkit
from streamkit import AsyncClient, Event


class Balances:
    """The projection: each account's balance, and the seq of the last event applied."""

    def __init__(self) -> None:
        self.accounts: defaultdict[str, float] = defaultdict(float)
        self.seq = 0
        self._applied = asyncio.Event()

    def apply(self, event: Event) -> None:
        """Fold one ``deposited`` / ``withdrawn`` event into the balances."""
        change = event.json()
        sign = 1 if change["type"] == "deposited" else -1
        self.accounts[change["account"]] += sign * change["amount"]
        self.seq = event.seq or self.seq
        self._applied.set()

    async def wait_for(self, seq: int) -> None:
        """Wait until the event at ``seq`` has been applied."""
        while self.seq < seq:
            self._applied.clear()
            await self._applied.wait()


def movement(kind: str, account: str, amount: float) -> Event:
    """An account movement, keyed by account so a filter can pick one account's events."""
    return Event({"type": kind, "account": account, "amount": amount}, key=f"accounts.{account}")


async def follow(client: AsyncClient, stream: str, balances: Balances) -> None:
    """Apply the history, then every new event, until cancelled."""
    async for event in client.iter(stream, from_seq=balances.seq + 1, follow=True):
        balances.apply(event)


async def main(url: str) -> dict[str, float]:
    """Build balances from history, keep them current with live events; return them."""
    stream = f"accounts-{uuid.uuid4().hex[:8]}"  # a fresh stream, deleted at the end
    async with streamkit.connect(url) as client:
        await client.create_stream(stream)
        try:
            history = await client.send(  # one all-or-nothing request; returns the acks
                stream,
                [
                    movement("deposited", "alice", 100),
                    movement("deposited", "bob", 50),
                    movement("withdrawn", "alice", 30),
                    movement("deposited", "carol", 75),
                ],
            )
            balances = Balances()
            projection = asyncio.create_task(follow(client, stream, balances), name="projection")
            try:
                await asyncio.wait_for(balances.wait_for(history[-1].seq), timeout=30)
                print(f"caught up at seq {balances.seq}:", dict(balances.accounts))

                live = await client.send(
                    stream, [movement("withdrawn", "bob", 20), movement("deposited", "alice", 5)]
                )
                await asyncio.wait_for(balances.wait_for(live[-1].seq), timeout=30)
                print(f"live at seq {balances.seq}:", dict(balances.accounts))
            finally:
                projection.cancel()
                await asyncio.gather(projection, return_exceptions=True)
        finally:
            await client.delete_stream(stream)
    return dict(balances.accounts)


if __name__ == "__main__":
    asyncio.run(main(os.environ.get("STREAMKIT_URL", "http://localhost:7376")))
