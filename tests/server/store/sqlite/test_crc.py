"""The engine's CRC-32 (`crc`): summed in pieces, the same sums, and the GIL kept."""

from __future__ import annotations

import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import pytest

from streamkit.server.store.sqlite.crc import GIL_KEPT_BYTES, crc32, crc32_keeping_gil

SIZES = [0, 1, GIL_KEPT_BYTES - 1, GIL_KEPT_BYTES, GIL_KEPT_BYTES + 1, 3 * GIL_KEPT_BYTES, 70_000]


@pytest.mark.parametrize("size", SIZES)
def test_the_sum_in_pieces_is_zlibs_sum(size: int) -> None:
    data = bytes(i * 7 % 251 for i in range(size))
    assert crc32_keeping_gil(data) == crc32(data) == zlib.crc32(data)
    assert crc32_keeping_gil(memoryview(data)[1:]) == zlib.crc32(data[1:])


@pytest.fixture
def spinner() -> Iterator[Callable[[], int]]:
    """A thread that counts, then lets the GIL go, over and over; the count it has
    reached. With a switch interval of a second (the measured loop below takes about
    a millisecond) it only gets the GIL when the main thread lets it go."""
    count = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1
            time.sleep(0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        stop.wait(0.01)  # it runs now (the main thread waits)
        yield lambda: count[0]
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


def test_summing_a_large_message_keeps_the_gil(spinner: Callable[[], int]) -> None:
    data = b"x" * 65536
    before = spinner()
    for _ in range(200):
        crc32_keeping_gil(data)
    assert spinner() == before
    time.sleep(0.01)
    assert spinner() > before  # it does count when it gets the GIL
