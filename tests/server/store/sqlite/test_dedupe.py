"""The SQLite engine's dedupe window on its own: visibility, rollback, expiry."""

from __future__ import annotations

from streamkit.server.store.sqlite.dedupe import DedupeWindow, pack, unpack

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
    fresh = DedupeWindow.keys(1, [*(f"new{i}" for i in range(100)), None])
    assert not window.knows_any(fresh, now)
    for known in ("g0", "g1", "g2"):
        assert window.knows_any([*fresh, key(1, known)], now), known
    assert not window.knows_any([key(2, "g0")], now)  # another stream's id
    window.stage(1, {"open": pack(9, now)})
    assert window.knows_any([key(1, "open"), None], now)
    # Present but past the window: not known, as find says.
    assert not window.knows_any([key(1, "g0")], T0 + WINDOW_MS * 1000)


def test_keys_of_a_batch_are_the_keys_of_its_ids_one_by_one() -> None:
    ids: list[str | None] = ["a", None, "b", "a"]
    keys = DedupeWindow.keys(3, ids)
    assert keys[1] is None
    assert keys[0] == keys[3] != keys[2]
    assert keys == [None if i is None else DedupeWindow.keys(3, [i])[0] for i in ids]
    assert DedupeWindow.keys(4, ["a"]) != DedupeWindow.keys(3, ["a"])  # per stream
