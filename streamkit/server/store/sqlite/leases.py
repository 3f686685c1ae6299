"""Leases: the new messages one receive hands out, recorded as one row, not one per message.

A receive that delivers messages for the first time stores a single ``leases``
row (in the same transaction that moves the consumer's cursor past them): its
token, its ack deadline, the seqs it holds and which of them are still unacked
(``live``, one byte per message). Every message in it shares the token, so an
ack id is ``{seq}.{token}`` as before. An ack of a whole batch is then one row
read and one row delete instead of a B-tree insert and delete per message; a
partial ack rewrites the row.

Anything that needs per-message state moves the message out of its lease into
an ordinary ``deliveries`` row first (in flight, same token, same deadline,
delivery count 1), and the existing per-message code takes it from there:

- `detach`: before a nack, release or extend names it (an extend naming every
  live message of a lease just moves the lease's deadline);
- `expire`: when the lease's deadline passes (the next receive redelivers them).

Retention forgets trimmed seqs in leases (`drop_upto`) as it deletes their rows.

The consumer's ``leased`` column counts live lease messages, as ``outstanding``
counts undead delivery rows; ``max_ack_pending`` bounds their sum. Consumers
with ``max_deliver = 1`` never use leases (an expired first delivery is dead at
once, which is per-message state), so a lease message is never a dead letter.
Being rows in the same database, leases survive a restart exactly as
deliveries do: an unacked message is redelivered after its deadline, a
confirmed ack is never undone.
"""

from __future__ import annotations

import secrets
import sqlite3
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from streamkit.server.store.sqlite.rows import parse_ack_ids
from streamkit.server.store.sqlite.schema import IN_FLIGHT

TOKEN_PREFIX = "L"
"""First character of a lease token; per-message tokens are hex digits only."""

_LIVE, _DONE = 1, 0
_SWAP = sys.byteorder != "little"  # seqs are stored little-endian


def new_token() -> str:
    """A fresh lease token (unique per consumer in practice: 64 random bits)."""
    return TOKEN_PREFIX + secrets.token_hex(8)


def is_token(token: object) -> bool:
    """Whether an ack id's token names a lease (rather than a delivery row)."""
    return isinstance(token, str) and token.startswith(TOKEN_PREFIX)


def usable(max_deliver: int | None) -> bool:
    """Whether a consumer with this ``max_deliver`` hands out new messages in leases."""
    return max_deliver is None or max_deliver > 1


def _pack_seqs(seqs: Sequence[int]) -> bytes | None:
    """None when ``seqs`` is one run (first, first+1, ...), else their int64s."""
    if seqs[-1] - seqs[0] == len(seqs) - 1:
        return None
    packed = array("q", seqs)
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


@dataclass
class Lease:
    """One lease row, decoded."""

    token: str
    due: int
    first: int
    seqs: array[int] | None
    """The seqs when they are not one run from ``first``."""
    live: bytearray
    n_live: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Lease:
        """A row of ``token, due, first_seq, seqs, live, n_live``."""
        token, due, first, packed, live, n_live = row
        seqs: array[int] | None = None
        if packed is not None:
            seqs = array("q")
            seqs.frombytes(packed)
            if _SWAP:
                seqs.byteswap()
        return cls(token, due, first, seqs, bytearray(live), n_live)

    def seq_at(self, i: int) -> int:
        """The seq of the ``i``-th message."""
        return self.first + i if self.seqs is None else self.seqs[i]

    def index(self, seq: int) -> int:
        """Where ``seq`` is in this lease, or -1."""
        if self.seqs is None:
            i = seq - self.first
            return i if 0 <= i < len(self.live) else -1
        i = bisect_left(self.seqs, seq)
        return i if i < len(self.seqs) and self.seqs[i] == seq else -1

    def live_seqs(self) -> list[int]:
        """The seqs still unacked, in order."""
        return [self.seq_at(i) for i, v in enumerate(self.live) if v]

    def take(self, seqs: Iterable[int]) -> tuple[list[int], list[int]]:
        """Mark ``seqs`` done; returns (those that were live, the others)."""
        taken: list[int] = []
        others: list[int] = []
        live = self.live
        for seq in seqs:
            i = self.index(seq)
            if i >= 0 and live[i]:
                live[i] = _DONE
                taken.append(seq)
            else:
                others.append(seq)
        self.n_live -= len(taken)
        return taken, others


_COLUMNS = "token, due, first_seq, seqs, live, n_live"


def add(conn: sqlite3.Connection, cid: int, token: str, due: int, seqs: Sequence[int]) -> None:
    """Store a lease over ``seqs`` (ascending, not empty), all live, due at ``due``."""
    conn.execute(
        f"INSERT INTO leases (consumer, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (cid, token, due, seqs[0], _pack_seqs(seqs), bytes([_LIVE]) * len(seqs), len(seqs)),
    )


def _load(conn: sqlite3.Connection, cid: int, token: str) -> Lease | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM leases WHERE consumer = ? AND token = ?", (cid, token)
    ).fetchone()
    return None if row is None else Lease.from_row(row)


def _save(conn: sqlite3.Connection, cid: int, lease: Lease) -> None:
    """Write back a lease whose ``live`` changed (deleting it once nothing is live)."""
    if lease.n_live <= 0:
        conn.execute("DELETE FROM leases WHERE consumer = ? AND token = ?", (cid, lease.token))
    else:
        conn.execute(
            "UPDATE leases SET live = ?, n_live = ? WHERE consumer = ? AND token = ?",
            (bytes(lease.live), lease.n_live, cid, lease.token),
        )


def _by_token(rows: Iterable[tuple[object, ...]]) -> dict[str, list[int]]:
    """``(..., cid, seq, token)`` rows of lease tokens, grouped: token -> seqs."""
    grouped: dict[str, list[int]] = {}
    for r in rows:
        token = r[-1]
        if is_token(token):
            assert isinstance(token, str)
            seq = r[-2]
            assert isinstance(seq, int)
            grouped.setdefault(token, []).append(seq)
    return grouped


def ack(
    conn: sqlite3.Connection, cid: int, ack_ids: Sequence[str]
) -> tuple[int, list[tuple[object, ...]]]:
    """Ack what ``ack_ids`` name in live leases.

    Returns (how many were acked here, ``(cid, seq, token)`` rows of the others, for
    the ``deliveries`` table: other tokens, and lease messages moved out of their lease).
    Ids that are not well formed are dropped, as `parse_ack_ids` drops them.
    """
    groups: dict[str, list[str]] = {}
    for ack_id in ack_ids:
        seq_text, _, token = ack_id.partition(".")
        texts = groups.get(token)
        if texts is None:
            groups[token] = [seq_text]
        else:
            texts.append(seq_text)
    acked = 0
    rest: list[tuple[object, ...]] = []
    for token, texts in groups.items():
        lease = _load(conn, cid, token) if token.startswith(TOKEN_PREFIX) else None
        if lease is None:
            if token:
                rest.extend(parse_ack_ids(cid, [f"{t}.{token}" for t in texts]))
            continue
        live, first, n = lease.live, lease.first, len(lease.live)
        taken = 0
        for text in texts:
            if not text.isdigit() or not text.isascii() or len(text) > 18:
                continue
            seq = int(text)
            i = seq - first if lease.seqs is None else lease.index(seq)
            if 0 <= i < n and live[i]:
                live[i] = _DONE
                taken += 1
            else:
                rest.append((cid, seq, token))
        if taken:
            lease.n_live -= taken
            _save(conn, cid, lease)
            acked += taken
    return acked, rest


def _materialize(conn: sqlite3.Connection, cid: int, token: str, due: int, seqs: list[int]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO deliveries (consumer, seq, state, token, due, delivery_count)"
        f" VALUES (?, ?, {IN_FLIGHT}, ?, ?, 1)",
        [(cid, seq, token, due) for seq in seqs],
    )


def _moved(conn: sqlite3.Connection, cid: int, count: int) -> None:
    if count:
        conn.execute(
            "UPDATE consumers SET outstanding = outstanding + ?, leased = leased - ? WHERE cid = ?",
            (count, count, cid),
        )


def detach(conn: sqlite3.Connection, cid: int, rows: Sequence[tuple[object, ...]]) -> int:
    """Move the live lease messages ``rows`` name (``(..., cid, seq, token)``) into
    in-flight delivery rows, so per-message updates apply to them; returns how many."""
    moved = 0
    for token, seqs in _by_token(rows).items():
        lease = _load(conn, cid, token)
        if lease is None:
            continue
        taken, _ = lease.take(seqs)
        if taken:
            _materialize(conn, cid, token, lease.due, taken)
            _save(conn, cid, lease)
            moved += len(taken)
    _moved(conn, cid, moved)
    return moved


def extend(
    conn: sqlite3.Connection, cid: int, rows: Sequence[tuple[object, ...]], due: int
) -> list[tuple[object, ...]]:
    """Push to ``due`` the deadline of each lease whose every live message ``rows``
    (``(due, cid, seq, token)``) name; returns the rows left for per-message extends."""
    whole: set[str] = set()
    for token, seqs in _by_token(rows).items():
        lease = _load(conn, cid, token)
        if lease is not None and set(lease.live_seqs()) <= set(seqs):
            conn.execute(
                "UPDATE leases SET due = ? WHERE consumer = ? AND token = ?", (due, cid, token)
            )
            whole.add(token)
    return [r for r in rows if r[-1] not in whole]


def expire(conn: sqlite3.Connection, cid: int, now: int) -> int:
    """Move every live message of leases due by ``now`` into in-flight delivery rows
    (past their deadline, so the next redelivery pass takes them); returns how many.
    Updates the consumer's counters."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM leases WHERE consumer = ? AND due <= ?", (cid, now)
    ).fetchall()
    moved = 0
    for row in rows:
        lease = Lease.from_row(row)
        seqs = lease.live_seqs()
        _materialize(conn, cid, lease.token, lease.due, seqs)
        conn.execute("DELETE FROM leases WHERE consumer = ? AND token = ?", (cid, lease.token))
        moved += len(seqs)
    _moved(conn, cid, moved)
    return moved


def min_due(conn: sqlite3.Connection, cid: int) -> int | None:
    """The earliest deadline of the consumer's leases (None: it holds none)."""
    (due,) = conn.execute("SELECT MIN(due) FROM leases WHERE consumer = ?", (cid,)).fetchone()
    return None if due is None else int(due)


def drop_upto(conn: sqlite3.Connection, sid: int, last: int) -> dict[int, int]:
    """Retention trimmed the stream's seqs up to ``last``: forget them in its consumers'
    leases. Returns consumer -> live lease messages dropped (counters not updated)."""
    rows = conn.execute(
        f"SELECT consumer, {_COLUMNS} FROM leases WHERE consumer IN"
        " (SELECT cid FROM consumers WHERE stream = ?) AND first_seq <= ?",
        (sid, last),
    ).fetchall()
    dropped: dict[int, int] = {}
    for row in rows:
        cid = int(row[0])
        lease = Lease.from_row(row[1:])
        taken, _ = lease.take([s for s in lease.live_seqs() if s <= last])
        if taken:
            _save(conn, cid, lease)
            dropped[cid] = dropped.get(cid, 0) + len(taken)
    return dropped


def counts(conn: sqlite3.Connection, cid: int, sid: int, now: int) -> tuple[int, int]:
    """(in flight, past their deadline) among the consumer's live lease messages whose
    message still exists (for stats; reader side)."""
    current: list[int] = []
    overdue: list[int] = []
    for row in conn.execute(f"SELECT {_COLUMNS} FROM leases WHERE consumer = ?", (cid,)):
        lease = Lease.from_row(row)
        (current if lease.due > now else overdue).extend(lease.live_seqs())
    return _existing(conn, sid, current), _existing(conn, sid, overdue)


def _existing(conn: sqlite3.Connection, sid: int, seqs: list[int]) -> int:
    if not seqs:
        return 0
    (n,) = conn.execute(
        "SELECT COUNT(*) FROM messages"
        " WHERE stream = ? AND seq IN (SELECT value FROM json_each(?))",
        (sid, orjson.dumps(seqs)),
    ).fetchone()
    return int(n)
