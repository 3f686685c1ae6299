"""The engine's CRC-32: zlib-ng's when the ``fast`` extra installed it, else zlib's.

Both compute the same sums (CRC-32/ISO-HDLC), so a file written with one is read
with the other. zlib-ng's takes 0.6 µs per 64 KB against zlib's 11, and 47 ns
for an event id against 105: data files check every message's bytes with it
(`datafiles`), and the dedupe window keys every id by it (`dedupe`).

Both let the GIL go while they sum more than `GIL_KEPT_BYTES`. For a thread that
sums the data it is about to write (`crc32_keeping_gil`), that is a loss: the sum
takes a microsecond, and getting the GIL back from a busy event loop takes tens.
"""

from __future__ import annotations

try:
    from zlib_ng.zlib_ng import crc32 as crc32
except ImportError:  # pragma: no cover - zlib-ng is in the dev extra
    from zlib import crc32 as crc32

__all__ = ["GIL_KEPT_BYTES", "crc32", "crc32_keeping_gil"]

GIL_KEPT_BYTES = 5 * 1024
"""The most bytes either ``crc32`` sums without letting the GIL go."""


def crc32_keeping_gil(data: bytes | memoryview) -> int:
    """`crc32` of ``data``, summed `GIL_KEPT_BYTES` at a time so that the GIL is kept.

    The data thread sums each message's bytes before it writes them: at 64 KB it
    waited about 29 µs per message for the GIL after each sum (`py-spy --idle`),
    and the server stored 10k to 11k events/s from a client that costs nothing,
    against 12k when the sums keep the GIL.
    """
    view = memoryview(data)
    if len(view) <= GIL_KEPT_BYTES:
        return crc32(view)
    value = 0
    for at in range(0, len(view), GIL_KEPT_BYTES):
        value = crc32(view[at : at + GIL_KEPT_BYTES], value)
    return value
