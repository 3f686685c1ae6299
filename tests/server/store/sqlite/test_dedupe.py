"""The SQLite engine's dedupe window on its own: visibility, rollback, expiry, and
batches looked up only in the generations whose id range can hold them."""

from __future__ import annotations

import random
import uuid

import pytest

from streamkit.server.store.sqlite.dedupe import DedupeWindow, id_range, pack, unpack

WINDOW_MS = 1000
T0 = 1_800_000_000_000_000  # µs


def test_pack_round_trips_a_seq_and_a_time() -> None:
    assert unpack(pack(2**62, T0)) == (2**62, T0)
    assert unpack(pack(1, 0)) == (1, 0)


def test_entries_are_found_once_staged_and_kept_once_committed() -> None:
    window = DedupeWindow(WINDOW_MS)
    window.stage(1, {"a": pack(7, T0)})
    assert window.find(1, "a", T0) == pack(7, T0)  # later jobs of the transaction see it
    assert window.find(2, "a", T0) is None  # per stream
    window.commit(T0)
    assert window.find(1, "a", T0 + 1) == pack(7, T0)
    assert len(window) == 1


def test_a_rollback_forgets_the_transaction_only() -> None:
    window = DedupeWindow(WINDOW_MS)
    window.stage(1, {"a": pack(1, T0)})
    window.commit(T0)
    window.stage(1, {"b": pack(2, T0)})
    window.rollback()
    assert window.find(1, "b", T0) is None
    assert window.find(1, "a", T0) is not None


def test_entries_leave_the_window_after_it_passed() -> None:
    window = DedupeWindow(WINDOW_MS)
    window.stage(1, {"old": pack(1, T0)})
    window.commit(T0)
    later = T0 + 600_000
    window.stage(1, {"new": pack(2, later)})
    window.commit(later)
    end = T0 + WINDOW_MS * 1000
    assert window.find(1, "old", end) is None  # out of the window even before expire()
    window.expire(end)
    assert len(window) == 1 and window.find(1, "new", end) is not None
    window.expire(later + WINDOW_MS * 1000)
    assert len(window) == 0


def test_an_id_stored_again_stays_until_its_latest_entry_expires() -> None:
    window = DedupeWindow(WINDOW_MS)
    window.stage(1, {"a": pack(1, T0)})
    window.commit(T0)
    again = T0 + 900_000
    window.stage(1, {"a": pack(5, again)})
    window.commit(again)
    window.expire(T0 + WINDOW_MS * 1000)  # the first commit's list names "a"
    assert window.find(1, "a", T0 + WINDOW_MS * 1000) == pack(5, again)


def test_knows_any_finds_an_id_in_any_generation_or_the_open_transaction() -> None:
    window = DedupeWindow(WINDOW_MS)

    def key(sid: int, msg_id: str) -> int | None:
        return DedupeWindow.keys(sid, [msg_id])[0]

    for i, at in enumerate((T0, T0 + 300_000, T0 + 600_000)):  # one generation each
        window.stage(1, {f"g{i}": pack(i + 1, at)})
        window.commit(at)
    now = T0 + 700_000
    new_ids = [*(f"new{i}" for i in range(100)), None]
    fresh = DedupeWindow.keys(1, new_ids)
    assert not window.knows_any(fresh, now, id_range(new_ids))
    for known in ("g0", "g1", "g2"):
        ids = [*new_ids, known]
        assert window.knows_any([*fresh, key(1, known)], now, id_range(ids)), known
        assert window.knows_any([*fresh, key(1, known)], now, None), known  # range unknown
    assert not window.knows_any([key(2, "g0")], now, ("g0", "g0"))  # another stream's id
    window.stage(1, {"open": pack(9, now)})
    assert window.knows_any([key(1, "open"), None], now, ("open", "open"))
    # Present but past the window: not known, as find says.
    assert not window.knows_any([key(1, "g0")], T0 + WINDOW_MS * 1000, ("g0", "g0"))


@pytest.mark.parametrize("ordered", [True, False], ids=["time-ordered ids", "random ids"])
def test_knows_any_agrees_with_looking_each_id_up(ordered: bool) -> None:
    """Generations are skipped by their id range; what is found must not change, for
    ids in order (most generations skipped) or in none (none skipped)."""
    rng = random.Random(7)
    window = DedupeWindow(WINDOW_MS, max_ids=400)  # 100 ids per generation
    counter = iter(range(10**9))

    def new_id() -> str:
        return f"{next(counter):012d}" if ordered else str(uuid.UUID(int=rng.getrandbits(128)))

    stored: list[str] = []
    at = T0
    for _ in range(60):  # transactions of 20: the window keeps four generations
        batch = [new_id() for _ in range(20)]
        window.stage(1, {i: pack(len(stored) + n, at) for n, i in enumerate(batch)})
        window.commit(at)
        stored += batch
        at += 10
    remembered = [i for i in stored if window.find(1, i, at) is not None]
    assert 300 <= len(remembered) < len(stored)  # some forgotten: four generations held
    candidates = [*remembered, *stored[:20], *(new_id() for _ in range(50))]
    for _ in range(300):
        ids: list[str | None] = [*rng.sample(candidates, rng.randint(1, 6)), None]
        if rng.random() < 0.5:  # mostly new ids, as most batches are
            ids = [*(new_id() for _ in range(5)), None]
        keys = DedupeWindow.keys(1, ids)
        expected = any(i is not None and window.find(1, i, at) is not None for i in ids)
        assert window.knows_any(keys, at, id_range(ids)) is expected, ids
    for generation_edge in (remembered[0], remembered[-1]):
        only = [generation_edge]
        assert window.knows_any(DedupeWindow.keys(1, only), at, id_range(only))


def test_staged_keys_need_their_range() -> None:
    window = DedupeWindow(WINDOW_MS)
    with pytest.raises(ValueError, match="range"):
        window.stage_keys({1: pack(1, T0)}, None)
    window.stage_keys({}, None)  # nothing staged, nothing needed


def test_keys_of_a_batch_are_the_keys_of_its_ids_one_by_one() -> None:
    ids: list[str | None] = ["a", None, "b", "a"]
    keys = DedupeWindow.keys(3, ids)
    assert keys[1] is None
    assert keys[0] == keys[3] != keys[2]
    assert keys == [None if i is None else DedupeWindow.keys(3, [i])[0] for i in ids]
    assert DedupeWindow.keys(4, ["a"]) != DedupeWindow.keys(3, ["a"])  # per stream
