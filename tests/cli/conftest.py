"""Fixtures for CLI tests: run ``streamkit ...`` in-process (in a thread) or as a subprocess.

The CLI runs its own event loop, so it runs in a worker thread (in-process) or
in a child process while the test's loop keeps serving the in-process server.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from streamkit.cli import main
from streamkit.testing import ServerHandle

CLI_TIMEOUT = 20.0


@dataclass
class Result:
    """What a CLI run returned and printed."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """The non-empty lines of stdout."""
        return [line for line in self.out.splitlines() if line.strip()]


RunCli = Callable[..., Awaitable[Result]]


@pytest.fixture
def cli(
    streamkit_server: ServerHandle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> RunCli:
    """``await cli("tail", "orders", stdin=b"...")``: run ``main(argv)`` against the test server."""
    monkeypatch.setenv("STREAMKIT_URL", streamkit_server.url)
    monkeypatch.delenv("STREAMKIT_API_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: no folding in assertions

    async def run(*argv: str, stdin: bytes | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        code = await asyncio.wait_for(asyncio.to_thread(main, list(argv)), CLI_TIMEOUT)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def cli_process(
    *argv: str, url: str | None = None, env: dict[str, str] | None = None, prelude: str = ""
) -> subprocess.Popen[bytes]:
    """Start ``streamkit ARGV`` in a child process (``prelude`` runs first, e.g. to hide rich)."""
    code = f"{prelude}\nfrom streamkit.cli import main\nraise SystemExit(main())"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKIT_")}
    full_env["PYTHONUNBUFFERED"] = "1"
    if url is not None:
        full_env["STREAMKIT_URL"] = url
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
    )
