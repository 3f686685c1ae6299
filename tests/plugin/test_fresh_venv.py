"""``pip install 'aiostreamkit[testing]'`` into an empty venv, then the docs' test in an
empty project, in both pytest-asyncio modes; then without pytest-asyncio, for real.

Slow (a venv and a wheel build, about a minute): run by ``make test-slow`` and CI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamkit.testing import MISSING_PYTEST_ASYNCIO
from tests.plugin.test_fresh_project import docs_test

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 300


def _run(*argv: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_the_testing_extra_is_all_a_fresh_project_needs(tmp_path: Path) -> None:
    venv, project = tmp_path / "venv", tmp_path / "project"
    assert _run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    installed = _run(
        python, "-m", "pip", "install", "--quiet", f"{ROOT}[testing]",
        cwd=tmp_path, timeout=INSTALL_TIMEOUT,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr

    project.mkdir()
    (project / "test_orders.py").write_text(docs_test())
    for mode_options in ((), ("-o", "asyncio_mode=auto")):  # strict is the default
        ran = _run(python, "-m", "pytest", "-q", *mode_options, cwd=project)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "1 passed" in ran.stdout

    removed = _run(python, "-m", "pip", "uninstall", "--quiet", "-y", "pytest-asyncio", cwd=project)
    assert removed.returncode == 0, removed.stderr
    ran = _run(python, "-m", "pytest", "-q", cwd=project)
    assert ran.returncode == 1
    assert f"\n{MISSING_PYTEST_ASYNCIO}\n" in ran.stdout, ran.stdout
    assert "1 error" in ran.stdout
