"""``connect()`` checks its URL at once: one without ``http://`` is a streamkit error, not an
aiohttp traceback at the first request."""

from __future__ import annotations

import pytest

import streamkit
from streamkit.sync import Client
from streamkit.testing import ServerHandle


@pytest.mark.parametrize(
    "url", ["localhost:7376", "127.0.0.1:7376", "ftp://localhost:7376", "http://", "http://h:x"]
)
def test_connect_refuses_a_url_it_cannot_use(url: str) -> None:
    with pytest.raises(streamkit.InvalidURL, match=f"invalid server URL {url!r}") as raised:
        streamkit.connect(url)
    assert isinstance(raised.value, streamkit.StreamkitError)
    assert isinstance(raised.value, ValueError)


def test_so_do_endpoints_and_streamkit_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(streamkit.InvalidURL, match="'localhost:2'"):
        streamkit.connect(endpoints=["http://localhost:1", "localhost:2"])
    monkeypatch.setenv("STREAMKIT_URL", "localhost:7376")
    with pytest.raises(streamkit.InvalidURL, match="give the scheme and the host"):
        streamkit.connect()


def test_the_sync_client_raises_it_too() -> None:
    with pytest.raises(streamkit.InvalidURL):
        Client("localhost:7376")


async def test_a_trailing_slash_is_fine(streamkit_server: ServerHandle) -> None:
    async with streamkit.connect(streamkit_server.url + "/") as client:
        assert (await client.ping())["ok"] is True
