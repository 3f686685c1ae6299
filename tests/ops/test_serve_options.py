"""``streamkit serve`` options of the limits reach the server, and bad values are usage errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import aiohttp
import pytest

import streamkit
from streamkit import Event
from streamkit.server import event_loop
from streamkit.server.serve import main
from tests.http_api import Api
from tests.ops.raw_http import connections, exchange, ping, request
from tests.server_process import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path / "options.db",
        extra=["--max-message-bytes", "100", "--max-connections", "3", "--idle-timeout", "30"],
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def test_limits_set_on_the_command_line_apply(server: ServerProcess) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        api = Api(session, server.url)
        await api.stream("orders")
        status, body = await api.call(
            "POST",
            "/api/streams/orders/messages",
            {"messages": [{"key": "k", "data": "z" * 100}, {"key": "k", "data": "z" * 101}]},
        )
        assert status == 413, body
        assert list(body["validation_errors"]) == ["messages[1].data"]
        # The session holds one connection; two more fill the cap of 3.
        async with connections(server.port, 2, ping):
            response, closed = await exchange(server.port, request())
            assert response.status == 503
            assert response.json()["code"] == "too_many_connections"
            assert closed


@pytest.mark.parametrize(
    "argv",
    [
        ["--idle-timeout", "0"],
        ["--header-timeout", "-1"],
        ["--header-timeout", "soon"],
        ["--max-connections", "0"],
        ["--max-message-bytes", "1.5"],
    ],
)
def test_bad_limit_values_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert argv[0] in capsys.readouterr().err


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("asyncio", "asyncio"),
        ("uvloop", "uvloop"),
        ("auto", "uvloop" if find_spec("uvloop") else "asyncio"),
    ],
)
async def test_the_server_runs_on_the_event_loop_chosen(
    tmp_path: Path, choice: str, expected: str
) -> None:
    if choice == "uvloop" and find_spec("uvloop") is None:
        pytest.skip("uvloop is not installed (the fast extra)")
    process = ServerProcess(tmp_path / "loop.db", extra=["--loop", choice, "--log-level", "INFO"])
    await process.astart()
    try:
        async with streamkit.connect(process.url) as client:
            await client.create_stream("orders")
            await client.publish("orders", [Event("x" * n, key="k") for n in (10, 70_000)])
            await client.flush(timeout=10)
            stored = [event.data async for event in client.iter("orders")]
        assert stored == ["x" * 10, "x" * 70_000]
    finally:
        assert process.stop() == 0
    assert f"{expected} loop)" in process.log_text()


def test_asking_for_uvloop_without_it_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop: ImportError
    monkeypatch.setattr(event_loop, "find_spec", lambda name: None)
    assert main(["--loop", "uvloop", "--db", str(tmp_path / "x.db"), "--port", "0"]) == 1
    assert "uvloop is not installed (pip install 'aiostreamkit[fast]')" in caplog.text
    assert not (tmp_path / "x.db").exists()  # nothing was started


def test_an_unknown_event_loop_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--loop", "trio"])
    assert exit_.value.code == 2
    assert "--loop" in capsys.readouterr().err
