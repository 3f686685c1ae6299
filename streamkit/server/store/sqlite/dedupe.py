"""The SQLite engine's dedupe window: the message ids each stream stored lately.

A published message whose ``id`` is in its stream's window is not stored
again; it is acked with the seq and commit time of the first. The writer
thread owns the window. Entries of a transaction are visible to its later
jobs at once (`stage`), and to everybody only after COMMIT (`commit`); a
rollback forgets them, so an id never points at a message that is not there.

Memory is set by ``max_ids``, not by the publish rate: past it the oldest id
is forgotten before its window ends (counted in `evicted`, logged once a
minute), so a retry older than what the window still covers is stored again.
An id is kept as a 96-bit int, its stream's and text's 64-bit hash beside
a CRC-32 of its text, whatever its length: about 150 bytes per id with the
dict entry, the packed (seq, commit time) and its place in the expiry ring,
and up to about 250 once ids come and go (a dict keeps the size it grew to).
Two different ids of one stream collide with a probability of about n/2**96
(n the ids remembered): nil for any n this holds. Ids expire in commit order,
oldest first, from a ring of their keys.
"""

from __future__ import annotations

import logging
import time
from array import array
from zlib import crc32

log = logging.getLogger(__name__)

_SEQ_BITS = 64
_SEQ_MASK = (1 << _SEQ_BITS) - 1
_EMPTY: dict[str, int] = {}

DEFAULT_MAX_IDS = 500_000
"""Ids remembered at most, all streams together (about 125 MB once ids churn)."""

_EVICTION_LOG_INTERVAL = 60.0


def pack(seq: int, committed_us: int) -> int:
    """One int holding a seq (< 2**62, see validation.MAX_INT) and a µs commit time."""
    return committed_us << _SEQ_BITS | seq


def unpack(hit: int) -> tuple[int, int]:
    """(seq, committed_us) of a `pack` ed entry."""
    return hit & _SEQ_MASK, hit >> _SEQ_BITS


_SID_MIX = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: spreads stream numbers over 64 bits


def _key(sid: int, msg_id: str) -> int:
    """The 96-bit key of an id in a stream (``hash`` is per process: the window is rebuilt
    at start-up; it is also cached in the str)."""
    return ((hash(msg_id) ^ sid * _SID_MIX) & _SEQ_MASK) << 32 | crc32(msg_id.encode())


class DedupeWindow:
    """Ids stored in the last ``window_ms``, per stream, at most ``max_ids`` in all.

    Writer thread only."""

    def __init__(self, window_ms: int, max_ids: int = DEFAULT_MAX_IDS) -> None:
        if max_ids < 1:
            raise ValueError("max_ids must be at least 1")
        self.window_us = window_ms * 1000
        self.max_ids = max_ids
        self.evicted = 0
        """Ids forgotten before their window ended because ``max_ids`` were remembered."""
        self._committed: dict[int, int] = {}  # _key -> pack(seq, committed_us)
        self._uncommitted: dict[int, dict[str, int]] = {}
        # The ring: keys and commit times in commit order, oldest at _head. A key stored
        # again has a newer slot too; the older slot then only counts against max_ids.
        self._keys: list[int] = []
        self._times = array("q")
        self._head = 0
        self._next_eviction_log = 0.0

    def __len__(self) -> int:
        return len(self._committed) + sum(len(ids) for ids in self._uncommitted.values())

    def find(self, sid: int, msg_id: str, now_us: int) -> int | None:
        """The `pack` ed entry of ``msg_id`` if stream ``sid`` stored it within the window."""
        hit = self._uncommitted.get(sid, _EMPTY).get(msg_id)
        if hit is None and self._committed:
            hit = self._committed.get(_key(sid, msg_id))
        if hit is not None and (hit >> _SEQ_BITS) + self.window_us > now_us:
            return hit
        return None

    def stage(self, sid: int, entries: dict[str, int]) -> None:
        """Add a finished job's entries (id -> `pack` ed) to the open transaction."""
        if entries:
            self._uncommitted.setdefault(sid, {}).update(entries)

    def commit(self, now_us: int) -> None:
        """The transaction committed: its entries join the window."""
        if not self._uncommitted:
            return
        committed, keys, times = self._committed, self._keys, self._times
        for sid, entries in self._uncommitted.items():
            mix = sid * _SID_MIX
            for msg_id, packed in entries.items():
                key = ((hash(msg_id) ^ mix) & _SEQ_MASK) << 32 | crc32(msg_id.encode())  # _key
                committed[key] = packed
                keys.append(key)
                times.append(packed >> _SEQ_BITS)
        self._uncommitted = {}
        over = len(keys) - self._head - self.max_ids
        if over > 0:
            self._evict(over, now_us)
        self._compact()

    def rollback(self) -> None:
        """The transaction rolled back: forget its entries."""
        self._uncommitted = {}

    def expire(self, now_us: int) -> None:
        """Drop the entries that left the window."""
        limit = now_us - self.window_us
        times, end = self._times, len(self._keys)
        head = self._head
        while head < end and times[head] <= limit:
            head += 1
        self._drop(head - self._head)
        self._compact()

    def _drop(self, count: int) -> None:
        """Pop the ``count`` oldest ring slots."""
        keys, times, committed = self._keys, self._times, self._committed
        head = self._head
        for slot in range(head, head + count):
            key = keys[slot]
            hit = committed.get(key)
            if hit is not None and hit >> _SEQ_BITS <= times[slot]:  # not stored again since
                del committed[key]
        self._head = head + count

    def _evict(self, count: int, now_us: int) -> None:
        """Make room for ``count`` ids: drop the oldest, noting those still in their window."""
        early = count
        limit = now_us - self.window_us
        times, head = self._times, self._head
        while early and times[head + early - 1] <= limit:  # the oldest may have expired
            early -= 1
        self._drop(count)
        if early:
            self.evicted += early
            clock = time.monotonic()
            if clock >= self._next_eviction_log:
                self._next_eviction_log = clock + _EVICTION_LOG_INTERVAL
                log.warning(
                    "dedupe window full (%d ids): ids are remembered %.1fs instead of %.1fs;"
                    " raise --dedupe-max-ids to cover the whole window (%d forgotten early)",
                    self.max_ids,
                    (now_us - times[self._head]) / 1e6 if self._head < len(times) else 0.0,
                    self.window_us / 1e6,
                    self.evicted,
                )

    def _compact(self) -> None:
        """Drop the ring's popped front once it is most of the ring (amortized O(1))."""
        head = self._head
        if head > 4096 and head * 2 > len(self._keys):
            del self._keys[:head]
            del self._times[:head]
            self._head = 0
