"""The README's example, then its shell block, run verbatim in that order against a server,
as a reader who copies them one after the other would."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from streamkit.client import AsyncClient
from streamkit.testing import ServerHandle

README = Path(__file__).resolve().parents[2] / "README.md"
WAIT = 30.0
BIN = str(Path(sys.executable).parent)  # the venv's `streamkit` command


def _python_example() -> str:
    section = README.read_text().split("\n## Example\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def _shell_commands() -> list[str]:
    section = README.read_text().split("From the shell", 1)[1]
    match = re.search(r"```console\n(.*?)```", section, re.S)
    assert match is not None
    commands = [line[2:] for line in match.group(1).splitlines() if line.startswith("$ ")]
    return [command.split("  #")[0].strip() for command in commands]


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKIT_")}
    return {**env, "STREAMKIT_URL": url, "PATH": f"{BIN}:{env.get('PATH', '')}"}


def _start(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A command that runs until interrupted, in the background (``exec``: the signal
    reaches it, not the shell)."""
    return subprocess.Popen(["bash", "-c", f"exec {command}"], stdout=subprocess.PIPE, env=env)


async def test_the_readme_example_then_its_shell_block(
    streamkit_server: ServerHandle, streamkit_client: AsyncClient
) -> None:
    url, env = streamkit_server.url, _env(streamkit_server.url)
    example = _python_example()
    assert '"http://localhost:7376"' in example
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", example.replace("http://localhost:7376", url)],
        capture_output=True,
        timeout=WAIT,
    )
    assert ran.returncode == 0, ran.stderr.decode()

    commands = _shell_commands()
    assert commands[0].startswith("streamkit streams create orders")
    assert any(command.endswith("--follow") for command in commands)
    for command in commands:
        if command.endswith("--follow"):  # runs until Ctrl-C: read the history, then press it
            proc = _start(command, env)
            try:
                assert proc.stdout is not None
                lines = [
                    await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), WAIT)
                    for _ in range(10)
                ]
                proc.send_signal(signal.SIGINT)
                await asyncio.wait_for(asyncio.to_thread(proc.wait), WAIT)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    proc.wait()
            assert proc.returncode == 130
            assert [orjson.loads(line)["seq"] for line in lines] == list(range(992, 1002))
            continue
        done = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", command], capture_output=True, env=env, timeout=WAIT
        )
        assert done.returncode == 0, (command, done.stderr.decode())
    stream = await streamkit_client.get_stream("orders")
    assert stream.message_count == 1001  # the example's event and the 1000 lines
