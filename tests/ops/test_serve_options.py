"""``streamkit serve`` options of the limits reach the server, and bad values are usage errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

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
