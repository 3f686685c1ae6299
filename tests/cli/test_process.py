"""The ``streamkit`` command as a shell runs it: pipes, Ctrl-C, and installs without rich."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import aiohttp
import orjson

from streamkit import Event
from streamkit.client import AsyncClient
from streamkit.testing import ServerHandle

from .conftest import cli_process

NO_RICH = "import sys; sys.modules['rich'] = None"
"""Makes ``import rich`` fail, as when the ``[cli]`` extra is not installed."""

WAIT = 15.0


async def _readline(proc: subprocess.Popen[bytes]) -> bytes:
    assert proc.stdout is not None
    return await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), WAIT)


async def _finish(proc: subprocess.Popen[bytes], stdin: bytes | None = None) -> tuple[bytes, bytes]:
    return await asyncio.wait_for(asyncio.to_thread(proc.communicate, stdin), WAIT)


async def test_publish_from_a_pipe(
    streamkit_server: ServerHandle, streamkit_client: AsyncClient
) -> None:
    await streamkit_client.create_stream("orders")
    proc = cli_process("publish", "orders", "-k", "orders.eu", url=streamkit_server.url)
    out, err = await _finish(proc, b'{"id": 1}\n{"id": 2}\nthree\n')
    assert proc.returncode == 0, err
    assert out.startswith(b"published 3 events to orders in ")
    assert [e.data for e in await streamkit_client.get("orders")] == [{"id": 1}, {"id": 2}, "three"]


async def test_tail_follow_until_ctrl_c(
    streamkit_server: ServerHandle, streamkit_client: AsyncClient
) -> None:
    await streamkit_client.create_stream("orders")
    await streamkit_client.send("orders", [Event({"n": 1})])
    proc = cli_process("tail", "orders", "--follow", "-n", "1", url=streamkit_server.url)
    try:
        assert orjson.loads(await _readline(proc))["data"] == {"n": 1}  # history: now following
        await streamkit_client.send("orders", [Event({"n": 2}), Event({"n": 3}, key="orders.x")])
        live = [orjson.loads(await _readline(proc)) for _ in range(2)]
        assert [(e["seq"], e["key"], e["data"]) for e in live] == [
            (2, "orders", {"n": 2}),
            (3, "orders.x", {"n": 3}),
        ]
        proc.send_signal(signal.SIGINT)
        _, err = await _finish(proc)
        assert proc.returncode == 130
        assert b"Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await _finish(proc)


async def test_commands_without_rich_say_how_to_install_it(
    streamkit_server: ServerHandle,
) -> None:
    proc = cli_process("streams", "list", url=streamkit_server.url, prelude=NO_RICH)
    _out, err = await _finish(proc)
    assert proc.returncode == 1
    assert err.decode().strip() == (
        "streamkit: error: `streamkit streams` needs rich: pip install 'aiostreamkit[cli]'"
    )


async def test_serve_runs_without_rich(tmp_path: Path) -> None:
    proc = cli_process("serve", "--port", "0", "--db", str(tmp_path / "cli.db"), prelude=NO_RICH)
    try:
        assert proc.stderr is not None
        line = b""
        while b"listening on" not in line:  # the log line that gives the URL
            line = await asyncio.wait_for(asyncio.to_thread(proc.stderr.readline), WAIT)
            assert line, "the server exited before listening"
        url = line.split(b"listening on ")[1].split()[0].decode()
        async with aiohttp.ClientSession() as http, http.get(f"{url}/api/ping") as response:
            assert (await response.json())["ok"] is True
        proc.send_signal(signal.SIGINT)
        await _finish(proc)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await _finish(proc)


async def test_a_closed_pipe_ends_tail_quietly(
    streamkit_server: ServerHandle, streamkit_client: AsyncClient
) -> None:
    await streamkit_client.create_stream("orders")
    await streamkit_client.send("orders", [Event({"n": 1})])
    proc = cli_process("tail", "orders", "-f", "-n", "1", url=streamkit_server.url)
    try:
        await _readline(proc)  # following now
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # `streamkit tail -f orders | head -1`: head is gone
        for n in range(2, 5):
            await streamkit_client.send("orders", [Event({"n": n})])
        await asyncio.wait_for(asyncio.to_thread(proc.wait), WAIT)
        assert proc.returncode == 141  # 128 + SIGPIPE, as the shell reports `yes | head -1`
        assert proc.stderr.read() == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
