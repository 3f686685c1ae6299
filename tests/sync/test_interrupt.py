"""Ctrl-C in a script's ``streamkit.sync`` loop: a clean KeyboardInterrupt, nothing lost.

Each test runs a real script in a child process against the in-process server,
waits until it is blocked in the loop, and sends it SIGINT as a terminal would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from streamkit import Event
from streamkit.client import AsyncClient
from streamkit.testing import ServerHandle

WAIT = 20.0

SUBSCRIBE = """
import sys
import streamkit.sync

with streamkit.sync.Client(sys.argv[1]) as client:
    for event in client.subscribe("orders", consumer="billing", wait_for=5):
        print("received", event.seq, flush=True)  # not acked: Ctrl-C must give it back
"""

TAIL = """
import sys
import streamkit.sync

with streamkit.sync.Client(sys.argv[1]) as client:
    for event in client.tail("orders", from_seq=1):
        print("received", event.seq, flush=True)
"""


def _script(code: str, url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKIT_")}
    return subprocess.Popen(
        [sys.executable, "-c", code, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )


async def _interrupted(proc: subprocess.Popen[bytes]) -> tuple[bytes, str]:
    """Wait for the script's first line, press Ctrl-C, and return the line and stderr."""
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), WAIT)
        await asyncio.sleep(0.2)  # back inside the loop's next (blocking) call
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(asyncio.to_thread(proc.communicate), WAIT)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    return line, err.decode()


def _assert_clean_keyboard_interrupt(proc: subprocess.Popen[bytes], err: str) -> None:
    # Python ends an uncaught KeyboardInterrupt by dying of SIGINT: the shell shows 130.
    assert proc.returncode == -signal.SIGINT, (proc.returncode, err)
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    for symptom in ("RuntimeError", "aclose", "was never awaited", "Task exception", "Error"):
        assert symptom not in err, err


@pytest.fixture
async def orders(streamkit_client: AsyncClient) -> AsyncClient:
    await streamkit_client.create_stream("orders")
    await streamkit_client.create_consumer("orders", "billing", "orders.>", ack_wait=60)
    await streamkit_client.send("orders", [Event({"n": 1}, key="orders.eu.1")])
    return streamkit_client


async def test_ctrl_c_in_a_subscribe_loop(
    streamkit_server: ServerHandle, orders: AsyncClient
) -> None:
    proc = _script(SUBSCRIBE, streamkit_server.url)
    line, err = await _interrupted(proc)
    assert line == b"received 1\n"
    _assert_clean_keyboard_interrupt(proc, err)
    # The event handed out but not acked was given back at once, not after ack_wait (60 s).
    consumer = await orders.get_consumer("orders", "billing")
    assert (consumer.in_flight, consumer.pending) == (0, 1)


async def test_ctrl_c_in_a_tail_loop(streamkit_server: ServerHandle, orders: AsyncClient) -> None:
    proc = _script(TAIL, streamkit_server.url)
    line, err = await _interrupted(proc)
    assert line == b"received 1\n"
    _assert_clean_keyboard_interrupt(proc, err)
