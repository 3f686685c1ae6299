"""The docs' test, copied into a fresh project with no pytest configuration at all.

It must pass in both of pytest-asyncio's modes (strict is its default), and
without pytest-asyncio the fixtures must fail with one line naming what to install.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

# Loaded here rather than first inside an in-process run: pytester unloads what a run
# imported, and the next run would then publish Events of a second `Event` class.
import streamkit.client  # noqa: F401
from streamkit.testing import MISSING_PYTEST_ASYNCIO

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
QUICK = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
"""Plugins the inner runs do without (hypothesis' alone costs a second to import)."""


def docs_test() -> str:
    """The Python block of the section "With the client fixture" in docs/testing.md."""
    section = DOCS.read_text().split("## With the client fixture", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_docs_test_is_an_unmarked_async_test() -> None:
    code = docs_test()
    assert "async def test_" in code and "streamkit_client" in code
    assert "mark.asyncio" not in code  # what the strict-mode run below proves needs no marker


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_the_docs_test_passes_in_a_fresh_project(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_orders=docs_test())
    assert not list(pytester.path.glob("*.ini")) and not list(pytester.path.glob("*.toml"))
    args = [*QUICK, "-W", "ignore::pytest.PytestDeprecationWarning"]  # the unset loop scope
    if mode == "auto":
        args += ["-o", "asyncio_mode=auto"]
    result = pytester.runpytest(*args)
    result.stdout.fnmatch_lines([f"asyncio: mode=Mode.{mode.upper()},*"])
    result.assert_outcomes(passed=1)


def test_a_marked_test_and_a_plain_sync_test_beside_it_still_work_in_strict_mode(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_mixed="""
import pytest


@pytest.mark.asyncio
async def test_marked(streamkit_server):
    assert streamkit_server.url.startswith("http://127.0.0.1:")


async def test_unmarked_without_our_fixtures_is_left_to_pytest_asyncio():
    pass


def test_sync():
    pass
"""
    )
    result = pytester.runpytest(*QUICK, "-W", "ignore::pytest.PytestDeprecationWarning")
    # strict mode does not run an unmarked coroutine that asks for none of our fixtures
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 2, result.stdout.str()
    assert "test_unmarked_without_our_fixtures" in result.stdout.str()


def test_with_pytest_asyncio_disabled_the_fixtures_say_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_orders=docs_test())
    result = pytester.runpytest(*QUICK, "-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    assert f"\n{MISSING_PYTEST_ASYNCIO}\n" in result.stdout.str()  # the whole report
    assert "Traceback" not in result.stdout.str()


BLOCKING_RUNNER = """
import importlib.abc
import sys


class NoPytestAsyncio(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pytest_asyncio" or name.startswith("pytest_asyncio."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoPytestAsyncio())
import pytest

raise SystemExit(pytest.main(sys.argv[1:]))
"""
"""Runs pytest where ``import pytest_asyncio`` fails; ``-p no:asyncio`` then stands
for its missing entry point."""


def test_with_pytest_asyncio_not_importable_the_fixtures_say_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    """A subprocess in which ``import pytest_asyncio`` fails, as on a machine without it."""
    pytester.makepyfile(test_orders=docs_test())
    runner = BLOCKING_RUNNER
    done = subprocess.run(
        [sys.executable, "-c", runner, *QUICK, "-p", "no:asyncio", "-q"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout, done.stdout
    assert f"\n{MISSING_PYTEST_ASYNCIO}\n" in done.stdout, done.stdout
    assert "pytest_asyncio" not in done.stdout  # it never loaded: the fallback was taken


def test_in_strict_mode_a_test_using_the_fixtures_through_its_own_fixture_runs_too(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_service="""
import pytest
import streamkit


@pytest.fixture
def streamkit_env(streamkit_server, monkeypatch):
    monkeypatch.setenv("STREAMKIT_URL", streamkit_server.url)


async def test_the_service_talks_to_the_test_server(streamkit_env):
    async with streamkit.connect() as client:
        assert (await client.ping())["ok"] is True
"""
    )
    result = pytester.runpytest(*QUICK, "-W", "ignore::pytest.PytestDeprecationWarning")
    result.assert_outcomes(passed=1)
