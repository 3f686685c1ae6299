"""Consumers: four processes compete on one durable consumer; one is SIGKILLed mid-batch.

What the killed process held (handed out, never acked) comes back after
``ack_wait`` and is acked by the others; every message is acked exactly once
in all (so nothing acked was redelivered and acked again), and the consumer
ends with nothing pending or in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import streamkit
from streamkit import Event
from tests.server_process import ServerProcess

from .helpers import wait_until
from .integrity import check_db

STREAM = "work"
CONSUMER = "workers"
WORKER = Path(__file__).with_name("consumer_worker.py")


@dataclass
class Worker:
    out: Path
    proc: subprocess.Popen[bytes]
    got: list[tuple[int, int]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    holding: bool = False
    ready: bool = False

    def read(self) -> None:
        self.got, self.acked, self.holding, self.ready = [], [], False, False
        text = self.out.read_text() if self.out.exists() else ""
        for line in text.splitlines():
            match line.split():
                case ["got", seq, count]:
                    self.got.append((int(seq), int(count)))
                case ["ack", seq]:
                    self.acked.append(int(seq))
                case ["hold"]:
                    self.holding = True
                case ["ready"]:
                    self.ready = True


def spawn(tmp: Path, n: int, url: str, hold_after: int | None = None) -> Worker:
    out = tmp / f"worker-{n}.out"
    command = [sys.executable, str(WORKER), url, STREAM, CONSUMER, str(out)]
    if hold_after is not None:
        command += ["--hold-after", str(hold_after)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Worker(out, proc)


async def consumers_run(tmp_path: Path, total: int, workers: int) -> dict[str, Any]:
    server = ServerProcess(tmp_path / "consumers.db")
    await server.astart()
    procs: list[Worker] = []
    try:
        async with streamkit.connect(server.url, timeout=10.0) as client:
            await client.create_stream(STREAM)
            await client.create_consumer(STREAM, CONSUMER, ">", ack_wait=1.0)
            victim = spawn(tmp_path, 0, server.url, hold_after=40)
            procs = [victim] + [spawn(tmp_path, n, server.url) for n in range(1, workers)]
            survivors = procs[1:]

            def refresh() -> None:
                for w in procs:
                    w.read()

            def all_ready() -> bool:
                refresh()
                return all(w.ready for w in procs)

            await wait_until(all_ready, 60, "every worker joined")  # so that all compete
            for start in range(0, total, 1000):
                stop = min(start + 1000, total)
                await client.send(STREAM, [Event(f"job-{i}") for i in range(start, stop)])

            def victim_holds() -> bool:
                refresh()
                return victim.holding

            await wait_until(victim_holds, 60, "the victim holding a batch")
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(10)
            victim.read()
            held = {seq for seq, _ in victim.got} - set(victim.acked)

            def all_acked() -> bool:
                refresh()
                return len({s for w in procs for s in w.acked}) >= total

            await wait_until(all_acked, 60, "every message acked")
            for w in survivors:
                w.proc.send_signal(signal.SIGTERM)
            for w in survivors:
                await asyncio.to_thread(w.proc.wait, 15)
            refresh()
            state = await client.get_consumer(STREAM, CONSUMER)
    finally:
        for w in procs:
            if w.proc.poll() is None:
                os.kill(w.proc.pid, signal.SIGKILL)
                w.proc.wait(10)
        server.stop()

    acks = Counter(s for w in procs for s in w.acked)
    redelivered_to = {seq: count for w in survivors for seq, count in w.got if seq in held}
    figures = {
        "published": total,
        "workers": workers,
        "acked_by_worker": [len(w.acked) for w in procs],
        "victim_acked": len(victim.acked),
        "victim_held": len(held),
        "held_redelivered": len(redelivered_to),
        "acked_total": sum(acks.values()),
        "acked_twice": sum(1 for n in acks.values() if n > 1),
        "redeliveries_seen": sum(1 for w in survivors for _, c in w.got if c > 1),
        "pending_in_flight_dead": (state.pending, state.in_flight, state.dead),
        "survivor_exit_codes": [w.proc.returncode for w in survivors],
    }
    assert len(held) >= 5, figures  # killed mid-batch, holding deliveries
    assert set(redelivered_to) == held and min(redelivered_to.values()) >= 2, figures
    assert set(acks) == set(range(1, total + 1)), figures
    assert figures["acked_twice"] == 0 and figures["acked_total"] == total, figures
    assert all(len(w.acked) > 0 for w in survivors), figures  # they did compete
    assert figures["pending_in_flight_dead"] == (0, 0, 0), figures
    assert figures["survivor_exit_codes"] == [0] * (workers - 1), figures
    check_db(server.db).assert_ok()
    return figures


async def test_killed_consumer_work_goes_to_the_others(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    record_property("figures", await consumers_run(tmp_path, total=2000, workers=4))


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_killed_consumer_big_backlog(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    record_property("figures", await consumers_run(tmp_path, total=20_000, workers=4))
