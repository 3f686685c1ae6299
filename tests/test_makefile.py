"""What ``make demo`` installs: the package alone, not the dev extra (``make -n``: the
commands make would run, none of them run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _planned(target: str) -> list[str]:
    make = shutil.which("make")
    assert make is not None, "make is what the README's set-up runs"
    done = subprocess.run(
        # --no-print-directory: under `make test` (MAKELEVEL set) make would also print
        # "Entering/Leaving directory" lines.
        [make, "-n", "-B", "--no-print-directory", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_make_demo_installs_only_the_package() -> None:
    installs = [line for line in _planned("demo") if " install " in line]
    assert installs[-1].endswith("pip install --quiet -e ."), installs
    assert not any("[dev]" in line or "[" in line.split("install", 1)[1] for line in installs)
    assert _planned("demo")[-1].endswith("python examples/demo.py")


def test_make_test_still_installs_the_dev_extra() -> None:
    assert any("pip install --quiet -e '.[dev]'" in line for line in _planned("types"))
