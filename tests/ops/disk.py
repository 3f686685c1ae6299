"""A small tmpfs the test mounts itself, to fill a disk for real."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _cannot(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, but {reason}")
    pytest.skip(reason)


@contextmanager
def small_disk(where: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a ``size`` tmpfs on ``where`` for the block (needs root: skips otherwise,
    fails under ``CI=true``)."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _cannot(f"cannot mount a tmpfs: {exc}")
    if done.returncode != 0:
        _cannot(f"cannot mount a tmpfs (root needed): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def ballast(path: Path, mib: int) -> Path:
    """A file of ``mib`` MiB that takes real space (freed later by unlinking it)."""
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    return path
