"""Options every user meets early: ``--url`` without a scheme, ``publish --retry-deadline``,
and a description in every command's ``--help``."""

from __future__ import annotations

import argparse
import socket

import pytest

from streamkit.cli import build_parser, main
from streamkit.client import AsyncClient

from .conftest import RunCli


@pytest.mark.parametrize("url", ["localhost:7376", "127.0.0.1:7376", "ftp://localhost", "http://"])
async def test_a_url_without_scheme_or_host_is_a_one_line_usage_error(
    cli: RunCli, url: str
) -> None:
    for argv in (
        ("--url", url, "streams", "list", "--json"),
        ("tail", "orders", "--url", url),
        ("publish", "orders", "--url", url),
    ):
        result = await cli(*argv, stdin=b"1\n")
        assert result.code == 2, result
        [line] = result.err.splitlines()
        assert line == (
            f"streamkit: error: invalid server URL {url!r}: "
            "give the scheme and the host, as in http://localhost:7376"
        )
        assert result.out == ""


async def test_a_scheme_less_streamkit_url_is_a_usage_error_too(
    cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMKIT_URL", "localhost:7376")
    result = await cli("stats", "--json")
    assert result.code == 2
    assert result.err.startswith("streamkit: error: invalid server URL 'localhost:7376'")


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_publish_retry_deadline_bounds_how_long_an_unreachable_server_is_retried(
    cli: RunCli,
) -> None:
    # The cli fixture gives up after 20 s: without the option (30 s) this would not end in time.
    url = f"http://127.0.0.1:{_closed_port()}"
    result = await cli("publish", "orders", "--url", url, "--retry-deadline", "1", stdin=b"1\n2\n")
    assert result.code == 1
    assert result.out.startswith("published 0 events to orders in ")
    assert result.out.rstrip().endswith(", 2 not stored")
    [line] = result.err.splitlines()
    assert line.startswith("streamkit: error: 2 event(s) not stored; first: event ")
    assert ": unavailable: " in line


async def test_publish_with_a_retry_deadline_stores_as_usual(
    cli: RunCli, streamkit_client: AsyncClient
) -> None:
    await streamkit_client.create_stream("orders")
    result = await cli("publish", "orders", "--retry-deadline", "2.5", stdin=b"1\n2\n")
    assert result.code == 0, result.err
    assert [e.data for e in await streamkit_client.get("orders")] == [1, 2]


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
async def test_a_bad_retry_deadline_is_a_usage_error(cli: RunCli, value: str) -> None:
    result = await cli("publish", "orders", "--retry-deadline", value)
    assert result.code == 2
    assert "--retry-deadline: must be a positive number of seconds" in result.err


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the parser: ("tail",), ("streams", "create"), ..."""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*path, name))
                found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(build_parser())


def test_the_parser_has_the_commands_the_docs_list() -> None:
    assert {("serve",), ("tail",), ("stats",), ("streams", "create"), ("consumers", "list")} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_commands_help_has_a_description(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    paragraphs = [p.strip() for p in out.split("\n\n") if p.strip()]
    assert paragraphs[0].startswith(f"usage: streamkit {' '.join(command)}"), out
    description = paragraphs[1]
    assert not description.startswith(("options:", "positional arguments:", "connection:")), out
    assert len(description.split()) >= 5, out
