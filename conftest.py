"""Test-session root: pytest puts this folder on ``sys.path``, so the suite's shared
helpers import as a package (``from tests.http_api import Api``)."""

from __future__ import annotations

import pytest

AIORESPONSES_FIXTURES = frozenset({"mocked", "route"})
"""The fixtures that serve canned responses through aioresponses (tests/_http,
tests/subscriber: ``mocked``; tests/publisher: ``route``)."""


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``aioresponses`` every test that needs it, directly or through a fixture.

    aioresponses cannot build aiohttp 3.14's responses, so the dev extra pins
    aiohttp below 3.14 for these tests; `make test-newest-aiohttp` runs every
    other test on the newest aiohttp with ``-m "not aioresponses"``.
    """
    for item in items:
        if AIORESPONSES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.aioresponses)
