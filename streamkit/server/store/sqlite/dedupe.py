"""The SQLite engine's dedupe window: the message ids each stream stored lately.

A published message whose ``id`` is in its stream's window is not stored
again; it is acked with the seq and commit time of the first. The writer
thread owns the window. Entries of a transaction are visible to its later
jobs at once (`stage`), and to everybody only after COMMIT (`commit`); a
rollback forgets them, so an id never points at a message that is not there.

Memory is set by ``max_ids``, not by the publish rate. Committed ids live in
a few generations (`GENERATIONS`), each a dict filled with at most
``max_ids / GENERATIONS`` ids and for at most a third of the window, then
closed; at a low rate the oldest has thus left the window before another
opens. Dicts that are only ever added to stay compact, and expiry drops a
whole generation once its newest id has left the window (one deallocation,
no per-id work). When a new generation would exceed ``max_ids``, the oldest
is dropped before its window ends: its ids are forgotten early (counted in
`evicted`, logged once a minute), so a retry older than what the window then
covers is stored again.

Each generation also keeps the least and the greatest id string it holds
(`IdRange`), and a batch is looked up only in the generations whose range
meets the batch's: no id outside a generation's range can be in it. Looking a
batch of new ids up in the four generations of a full window cost about 0.6
µs per id, most of it cache misses. With time-ordered ids, as streamkit's
client makes (UUIDv7), only the open generation meets a new batch's range,
and the lookup costs about 20 ns per id, plus about 50 on the event loop for
the batch's range. With ids in no order every generation is looked up, as
before.

An id is kept as a 96-bit int, its stream's and text's 64-bit hash beside a
CRC-32 of its text, whatever its length (``hash`` is per process, and cached
in the str: the window is rebuilt at start-up) (about 130 bytes per id with the
dict entry and the packed seq and commit time, where a dict of str took
about 220). Two different ids of one stream collide with a probability of
about n/2**96 (n the ids remembered): nil for any n this holds.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence

from streamkit.server.store.sqlite.crc import crc32

log = logging.getLogger(__name__)

_SEQ_BITS = 64
_SEQ_MASK = (1 << _SEQ_BITS) - 1

DEFAULT_MAX_IDS = 1_000_000
"""Ids remembered at most, all streams together (about 150 MB resident when all used)."""

GENERATIONS = 4
"""Dicts the window is split into: a lookup that misses costs one probe per generation."""

_EVICTION_LOG_INTERVAL = 60.0
_SID_MIX = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: spreads stream numbers over 64 bits


IdRange = tuple[str, str]
"""The least and the greatest of some ids (as strings compare)."""


def id_range(ids: Iterable[str | None]) -> IdRange | None:
    """The `IdRange` of ``ids`` (None among them: a message without an id); None
    when there is no id at all."""
    present = [i for i in ids if i is not None]
    return (min(present), max(present)) if present else None


def _widened(held: IdRange | None, more: IdRange) -> IdRange:
    if held is None:
        return more
    return (min(held[0], more[0]), max(held[1], more[1]))


def pack(seq: int, committed_us: int) -> int:
    """One int holding a seq (< 2**62, see validation.MAX_INT) and a µs commit time."""
    return committed_us << _SEQ_BITS | seq


def unpack(hit: int) -> tuple[int, int]:
    """(seq, committed_us) of a `pack` ed entry."""
    return hit & _SEQ_MASK, hit >> _SEQ_BITS


class _Generation:
    """Ids committed from ``first_us`` on, up to ``last_us`` (µs), key -> `pack` ed,
    and the `IdRange` of their id strings (None while it holds none)."""

    __slots__ = ("first_us", "id_range", "ids", "last_us")

    def __init__(self, first_us: int) -> None:
        self.ids: dict[int, int] = {}
        self.id_range: IdRange | None = None
        self.first_us = first_us
        self.last_us = first_us

    def may_hold(self, ids: IdRange) -> bool:
        """False when no id within ``ids`` can be in this generation."""
        held = self.id_range
        return held is not None and ids[0] <= held[1] and held[0] <= ids[1]


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
        self._per_generation = -(-max_ids // GENERATIONS)
        # A generation spans a third of the window, so the oldest of four has left the
        # window by the time a fifth opens: at a low rate, no id is forgotten early.
        self._span_us = max(1, self.window_us // (GENERATIONS - 1))
        self._generations: deque[_Generation] = deque()  # oldest first
        self._uncommitted: dict[int, int] = {}  # key -> packed, this transaction's
        self._uncommitted_range: IdRange | None = None
        self._next_eviction_log = 0.0

    def __len__(self) -> int:
        """Ids held (one stored again in a later generation counts twice)."""
        held = sum(len(g.ids) for g in self._generations)
        return held + len(self._uncommitted)

    @staticmethod
    def keys(sid: int, msg_ids: Sequence[str | None]) -> list[int | None]:
        """The 96-bit key each of ``msg_ids`` of stream ``sid`` is remembered by (see the
        module doc); None for a message without an id. One comprehension for a batch:
        a call per id costs about a quarter more."""
        mix = sid * _SID_MIX
        return [
            None if i is None else ((hash(i) ^ mix) & _SEQ_MASK) << 32 | crc32(i.encode())
            for i in msg_ids
        ]

    def find(self, sid: int, msg_id: str, now_us: int) -> int | None:
        """The `pack` ed entry of ``msg_id`` if stream ``sid`` stored it within the window."""
        (key,) = self.keys(sid, [msg_id])
        assert key is not None
        return self.find_key(key, now_us)

    def find_key(self, key: int, now_us: int) -> int | None:
        """`find` by a key the caller has computed already (the hot path: it is computed
        once per message, for the lookup and, on a miss, for staging)."""
        hit = self._uncommitted.get(key)
        if hit is None:
            for generation in reversed(self._generations):  # the newest entry wins
                hit = generation.ids.get(key)
                if hit is not None:
                    break
        if hit is not None and (hit >> _SEQ_BITS) + self.window_us > now_us:
            return hit
        return None

    def knows_any(self, keys: list[int | None], now_us: int, ids: IdRange | None) -> bool:
        """Whether any of ``keys`` (None: a message without an id) is in the window;
        ``ids`` is the `id_range` of the ids they are the keys of."""
        generations: Iterable[_Generation] = self._generations
        if ids is not None:
            generations = [g for g in generations if g.may_hold(ids)]
        # The usual batch holds only new ids: C-level disjointness tests of each
        # generation answer that at once, instead of a lookup per id per generation.
        if self._uncommitted.keys().isdisjoint(keys) and all(
            generation.ids.keys().isdisjoint(keys) for generation in generations
        ):
            return False
        find = self.find_key
        return any(key is not None and find(key, now_us) is not None for key in keys)

    def stage(self, sid: int, entries: dict[str, int]) -> None:
        """Add a finished job's entries (id -> `pack` ed) to the open transaction."""
        self.stage_keys(self._keyed(sid, entries), id_range(entries))

    def stage_keys(self, entries: dict[int, int], ids: IdRange | None) -> None:
        """`stage` entries keyed by `keys` already; ``ids`` is the `id_range` of their
        ids, or of more (a whole batch's, say: a wider range is only slower)."""
        if entries:
            if ids is None:
                raise ValueError("staged ids need their range")
            self._uncommitted.update(entries)
            self._uncommitted_range = _widened(self._uncommitted_range, ids)

    def commit(self, now_us: int) -> None:
        """The transaction committed: its entries join the window."""
        if self._uncommitted:
            assert self._uncommitted_range is not None  # stage_keys set it
            self._add(self._uncommitted, now_us, self._uncommitted_range)
        self._end_transaction()

    def load(self, sid: int, entries: dict[str, int], now_us: int) -> None:
        """Add committed entries at once (rebuilding the window; oldest first, please)."""
        ids = id_range(entries)
        if ids is not None:
            self._add(self._keyed(sid, entries), now_us, ids)

    def _keyed(self, sid: int, entries: dict[str, int]) -> dict[int, int]:
        """``entries`` (id -> `pack` ed) keyed by their `keys`."""
        keys = self.keys(sid, list(entries))
        return {k: v for k, v in zip(keys, entries.values(), strict=True) if k is not None}

    def _add(self, entries: dict[int, int], now_us: int, ids: IdRange) -> None:
        """Commit ``entries``; each generation they go to widens its range by ``ids``."""
        generations = self._generations
        current = generations[-1] if generations else None
        if current is not None:  # all or some go to it (a wider range is only slower)
            current.id_range = _widened(current.id_range, ids)
        latest = max(entries.values(), default=0) >> _SEQ_BITS
        if (
            current is not None
            and len(current.ids) + len(entries) <= self._per_generation
            and latest < current.first_us + self._span_us
        ):
            # The usual commit: all of it fits the open generation, in one C-level update.
            current.ids.update(entries)
            current.last_us = max(current.last_us, now_us, latest)
            return
        held: dict[int, int] = current.ids if current else {}
        full = self._per_generation
        ends = current.first_us + self._span_us if current else 0
        added = False
        for key, packed in entries.items():
            at = packed >> _SEQ_BITS
            if current is None or len(held) >= full or at >= ends:
                if current is not None and added:  # now_us bounds what this call put in it
                    current.last_us = max(current.last_us, now_us)
                current = self._open(at)
                current.id_range = ids
                held, ends = current.ids, at + self._span_us
            held[key] = packed
            added = True
        if current is not None and added:
            current.last_us = max(current.last_us, now_us)

    def rollback(self) -> None:
        """The transaction rolled back: forget its entries."""
        self._end_transaction()

    def _end_transaction(self) -> None:
        self._uncommitted = {}
        self._uncommitted_range = None

    def expire(self, now_us: int) -> None:
        """Drop the generations whose every id has left the window."""
        generations, limit = self._generations, now_us - self.window_us
        while generations and generations[0].last_us <= limit:
            generations.popleft()

    def _open(self, first_us: int) -> _Generation:
        """Start a generation, dropping the oldest first when it would exceed ``max_ids``."""
        generations = self._generations
        if len(generations) >= GENERATIONS:
            oldest = generations.popleft()
            self._evicted(oldest, first_us)
        generation = _Generation(first_us)
        generations.append(generation)
        return generation

    def _evicted(self, generation: _Generation, now_us: int) -> None:
        limit = (now_us - self.window_us) << _SEQ_BITS | _SEQ_MASK
        early = sum(1 for hit in generation.ids.values() if hit > limit)
        if not early:
            return
        self.evicted += early
        clock = time.monotonic()
        if clock >= self._next_eviction_log:
            self._next_eviction_log = clock + _EVICTION_LOG_INTERVAL
            log.warning(
                "dedupe window full (%d ids): ids are remembered %.1fs instead of %.1fs;"
                " raise --dedupe-max-ids to cover the whole window (%d forgotten early)",
                self.max_ids,
                (now_us - generation.last_us) / 1e6,
                self.window_us / 1e6,
                self.evicted,
            )
