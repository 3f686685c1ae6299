"""What ``pip install aiostreamkit`` installs: its name, the command, the pytest plugin."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution, entry_points

import pytest

from streamkit.client import AsyncClient

DIST = "aiostreamkit"


def test_the_distribution_is_aiostreamkit_and_provides_the_streamkit_package() -> None:
    dist = distribution(DIST)
    assert dist.metadata["Name"] == DIST
    with pytest.raises(PackageNotFoundError):  # PyPI's `streamkit` is somebody else's
        distribution("streamkit")


def test_the_extras_users_are_told_to_install_exist() -> None:
    extras = set(distribution(DIST).metadata.get_all("Provides-Extra") or [])
    assert {"cli", "jetstream", "testing"} <= extras
    testing = [r for r in distribution(DIST).requires or [] if "extra == 'testing'" in r]
    assert any(r.startswith("pytest-asyncio") for r in testing), testing


def test_it_installs_the_streamkit_command_and_the_pytest_plugin() -> None:
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.dist}
    assert scripts["streamkit"].value == "streamkit.cli:main"
    assert scripts["streamkit"].dist is not None and scripts["streamkit"].dist.name == DIST
    [plugin] = [ep for ep in entry_points(group="pytest11") if ep.value == "streamkit.testing"]
    assert plugin.name == "streamkit"
    assert plugin.dist is not None and plugin.dist.name == DIST


async def test_the_server_reports_the_distributions_version(
    streamkit_client: AsyncClient,
) -> None:
    assert (await streamkit_client.ping())["version"] == distribution(DIST).version
