"""The benchmark tool that needs no servers still runs through (its figures are never
asserted): `benchmarks.stages` drives the real publisher, which raises if it nacks.
And the systems a ratio compares take turns run by run (`harness.interleaved`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from benchmarks import stages
from benchmarks.harness import interleaved


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


async def test_interleaved_runs_each_system_once_per_round_and_keeps_its_best() -> None:
    calls: list[str] = []
    rates = {"a": iter([3.0, 5.0, 4.0]), "b": iter([9.0, 1.0, 2.0])}

    def measure(name: str) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            calls.append(name)
            return next(rates[name])

        return run

    best = await interleaved(3, {"a": measure("a"), "b": measure("b")}, float)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert best == {"a": 5.0, "b": 9.0}
