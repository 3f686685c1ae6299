"""Fixtures for server tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import ServerProcess


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "streamkit.db")
    try:
        yield server
    finally:
        if server.proc is not None:
            server.stop()
