"""The server process's event loop: uvloop when it is installed, else asyncio's.

uvloop (installed by the ``fast`` extra where it builds: not on Windows) runs
the server's sockets in libuv. On the 2-vCPU machine of the benchmarks it cut
the server's CPU per 64 KB published event by 8 to 15% and raised the 16 KB and
64 KB publish rates by about 7%, in alternated runs of the same code on each
loop; with 100-byte events the two loops did the same. Nothing in the server
depends on which loop runs it.

Only `streamkit serve` / ``python -m streamkit.server`` choose (``--loop``): a
server embedded in another program (tests, the pytest plugin) runs on that
program's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from importlib.util import find_spec
from typing import Any, TypeVar

T = TypeVar("T")

LOOPS = ("auto", "asyncio", "uvloop")
"""What ``--loop`` takes: ``auto`` is uvloop when it is installed, else asyncio."""


class LoopUnavailable(RuntimeError):
    """The loop asked for is not installed."""


def resolve(choice: str) -> str:
    """The loop ``choice`` (one of `LOOPS`) stands for here: ``asyncio`` or ``uvloop``."""
    if choice not in LOOPS:
        raise ValueError(f"unknown event loop {choice!r}: one of {', '.join(LOOPS)}")
    installed = find_spec("uvloop") is not None
    if choice == "auto":
        return "uvloop" if installed else "asyncio"
    if choice == "uvloop" and not installed:
        raise LoopUnavailable(
            "--loop uvloop: uvloop is not installed (pip install 'aiostreamkit[fast]')"
        )
    return choice


def run(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Run ``main`` to the end on a new loop of kind ``loop`` (as `resolve` gives it)."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
