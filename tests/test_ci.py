"""``.ci/run``: its steps, in order, and a non-zero exit as soon as one fails.

The script runs from a copy in a temporary directory, with ``make`` and the
venv's ``pytest`` replaced by stand-ins that log their arguments (and fail
when told to): what is checked is the script's own control flow, not the
suite it starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    "make test",
    "make test-newest-aiohttp",
    "pytest -q -m slow tests/server/store/jetstream tests/plugin",
]

STAND_IN = """#!/bin/sh
echo "{name} $*" >> "$CI_LOG"
case "{name} $*" in "$CI_FAIL") exit 3;; esac
exit 0
"""


def _run_ci(tmp_path: Path, fail: str = "") -> tuple[int, list[str]]:
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    tools, venv = tmp_path / "tools", tmp_path / ".venv" / "bin"
    for directory, name in ((tools, "make"), (tools, "chromium"), (venv, "pytest")):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(STAND_IN.format(name=name))
        (directory / name).chmod(0o755)
    log = tmp_path / "ci.log"
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "CI_LOG": str(log)}
    env["CI_FAIL"] = fail
    done = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")], env=env, capture_output=True, timeout=30
    )
    return done.returncode, log.read_text().splitlines() if log.exists() else []


def test_every_step_runs_in_order(tmp_path: Path) -> None:
    assert _run_ci(tmp_path) == (0, STEPS)


@pytest.mark.parametrize("failing", range(len(STEPS)))
def test_a_failing_step_fails_the_run_and_stops_it(tmp_path: Path, failing: int) -> None:
    code, ran = _run_ci(tmp_path, fail=STEPS[failing])
    assert code != 0
    assert ran == STEPS[: failing + 1]


def _collected(marker_expression: str, *paths: str) -> set[str]:
    done = subprocess.run(
        [
            *(str(ROOT / ".venv" / "bin" / "pytest"),),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            marker_expression,
            *paths,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {line for line in done.stdout.splitlines() if "::" in line}


def test_the_newest_aiohttp_run_leaves_out_exactly_the_aioresponses_tests() -> None:
    folders = ("tests/_http", "tests/publisher", "tests/subscriber")
    left_out, kept = _collected("aioresponses", *folders), _collected("not aioresponses", *folders)
    assert "tests/_http/test_transport.py::test_json_round_trip" in left_out  # mocked
    assert (
        "tests/publisher/test_failures.py::test_a_4xx_rejects_the_whole_batch_without_retrying[400-rejected]"
        in left_out
    )  # route
    assert "tests/_http/test_transport.py::test_backoff_is_capped_and_jittered" in kept  # no HTTP
    # the publisher's tests against a real server run on the newest aiohttp too
    assert {n for n in kept if n.startswith("tests/publisher/test_integration.py::")}
    assert {n for n in kept if n.startswith("tests/publisher/test_server_restart.py::")}
    assert not {n for n in left_out if "test_integration.py" in n or "test_server_restart" in n}
