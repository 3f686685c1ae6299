"""Each side loads only its own modules: the server no client internals, the command
line no server unless it serves, and ``import streamkit`` nothing until a name is used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import streamkit

CLIENT_INTERNALS = ("streamkit.publisher", "streamkit.subscriber", "streamkit._http")


def _loaded_after(code: str) -> list[str]:
    """The streamkit modules a fresh interpreter has loaded after running ``code``."""
    report = (
        "import sys, json\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('streamkit'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    loaded: list[str] = json.loads(out.splitlines()[-1])
    return loaded


def test_the_server_app_loads_no_client_internals() -> None:
    loaded = _loaded_after("import streamkit.server.app")
    assert "streamkit.server.app" in loaded
    assert [m for m in loaded if m.startswith(CLIENT_INTERNALS)] == []


def test_a_client_command_loads_no_server_module() -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "streamkit.cli", "publish", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()]
    assert "streamkit.cli" in imported
    assert [m for m in imported if m.startswith("streamkit.server")] == []


def test_serve_help_lists_the_servers_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "streamkit.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "usage: streamkit serve" in out.stdout
    assert "--db" in out.stdout


def test_import_streamkit_loads_nothing_until_a_name_is_used() -> None:
    assert _loaded_after("import streamkit") == ["streamkit"]
    assert "streamkit.client" in _loaded_after("import streamkit; streamkit.connect")


@pytest.mark.parametrize("name", streamkit.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(streamkit, name) is not None
    assert name in dir(streamkit)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = streamkit.nope
