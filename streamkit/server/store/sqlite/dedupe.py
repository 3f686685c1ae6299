"""The SQLite engine's dedupe window: the message ids each stream stored lately.

A published message whose ``id`` is in its stream's window is not stored
again; it is acked with the seq and commit time of the first. The writer
thread owns the window. Entries of a transaction are visible to its later
jobs at once (`stage`), and to everybody only after COMMIT (`commit`); a
rollback forgets them, so an id never points at a message that is not there.

At full speed the window is large (100k ids/s kept 2 minutes is 12M entries),
so it is laid out for memory and for the garbage collector: per stream one
dict id -> int, the seq and the commit time packed into that one int. Dicts
of only str and int are never tracked by the collector, where a dict of
tuples would be scanned by every full collection. Expiry goes by commit:
one list of ids per stream per transaction.
"""

from __future__ import annotations

from collections import deque

_SEQ_BITS = 64
_SEQ_MASK = (1 << _SEQ_BITS) - 1
_EMPTY: dict[str, int] = {}


def pack(seq: int, committed_us: int) -> int:
    """One int holding a seq (< 2**62, see validation.MAX_INT) and a µs commit time."""
    return committed_us << _SEQ_BITS | seq


def unpack(hit: int) -> tuple[int, int]:
    """(seq, committed_us) of a `pack` ed entry."""
    return hit & _SEQ_MASK, hit >> _SEQ_BITS


class DedupeWindow:
    """Ids stored in the last ``window_ms``, per stream (writer thread only)."""

    def __init__(self, window_ms: int) -> None:
        self.window_us = window_ms * 1000
        self._committed: dict[int, dict[str, int]] = {}
        self._uncommitted: dict[int, dict[str, int]] = {}
        # (when, stream, ids) per stream per commit: by ``when`` each of those ids has
        # expired, unless stored again since (then a later commit lists it again).
        self._expiry: deque[tuple[int, int, list[str]]] = deque()

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._committed.values())

    def find(self, sid: int, msg_id: str, now_us: int) -> int | None:
        """The `pack` ed entry of ``msg_id`` if stream ``sid`` stored it within the window."""
        hit = self._uncommitted.get(sid, _EMPTY).get(msg_id) or self._committed.get(
            sid, _EMPTY
        ).get(msg_id)
        if hit is not None and (hit >> _SEQ_BITS) + self.window_us > now_us:
            return hit
        return None

    def stage(self, sid: int, entries: dict[str, int]) -> None:
        """Add a finished job's entries (id -> `pack` ed) to the open transaction."""
        if entries:
            self._uncommitted.setdefault(sid, {}).update(entries)

    def commit(self, now_us: int) -> None:
        """The transaction committed: its entries join the window."""
        for sid, entries in self._uncommitted.items():
            self._committed.setdefault(sid, {}).update(entries)
            # Every entry is from before now, so all have expired by now + window.
            self._expiry.append((now_us + self.window_us, sid, list(entries)))
        self._uncommitted = {}

    def rollback(self) -> None:
        """The transaction rolled back: forget its entries."""
        self._uncommitted = {}

    def expire(self, now_us: int) -> None:
        """Drop the entries that left the window."""
        expiry = self._expiry
        while expiry and expiry[0][0] <= now_us:
            _, sid, ids = expiry.popleft()
            entries = self._committed.get(sid)
            if entries is None:
                continue
            for msg_id in ids:
                hit = entries.get(msg_id)
                if hit is not None and (hit >> _SEQ_BITS) + self.window_us <= now_us:
                    del entries[msg_id]
            if not entries:
                del self._committed[sid]
