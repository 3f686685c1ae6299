"""The test process's own open-file limit, raised so that floods of sockets fit."""

from __future__ import annotations

import os
import resource

import pytest


def need_open_files(count: int) -> None:
    """Raise this process's soft ``RLIMIT_NOFILE`` to the hard limit; skip if ``count`` won't fit.

    Under ``CI=true`` a limit too low fails the test instead of skipping it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < count:
        why = f"needs {count} open files, the hard nofile limit is {hard}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
