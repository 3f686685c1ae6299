"""The benchmark tool that needs no servers still runs through (its figures are never
asserted): `benchmarks.stages` drives the real publisher, which raises if it nacks."""

from __future__ import annotations

import pytest

from benchmarks import stages


def test_stages_times_every_stage_of_publish_and_receive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stages.main(["--repeat", "1"])
    out = capsys.readouterr().out
    for stage in (
        "client: Publisher publish+flush, fake API",
        "server: store publish + commit (writer)",
        "server: store receive + commit",
        "server: store ack + commit",
    ):
        assert stage in out
