"""Data files written past the page cache (`directio`): every byte lands where its
place says, across blocks, buffers and files; a file system that refuses direct
writes gets buffered ones instead, and loses nothing."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path
from typing import Any

import pytest

from streamkit.server.store.sqlite import datafiles, directio
from streamkit.server.store.sqlite.datafiles import DataFiles, Place
from streamkit.server.store.sqlite.directio import BLOCK, DirectAppender


def _direct_or_skip(directory: Path) -> None:
    """Skip unless ``directory``'s file system takes ``O_DIRECT`` (tmpfs may not)."""
    if not directio.supported():
        pytest.skip("this platform has no O_DIRECT")
    probe = directory / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | directio.open_flags(), 0o644))
    except OSError as exc:
        pytest.skip(f"{directory} refuses O_DIRECT: {exc}")
    finally:
        probe.unlink(missing_ok=True)


def _blobs(rng: random.Random, count: int, largest: int) -> list[bytes]:
    """Blobs of random sizes (some empty, some past a buffer), each of its own byte."""
    sizes = [rng.choice((0, 1, BLOCK - 1, BLOCK, BLOCK + 1)) for _ in range(count // 4)]
    sizes += [rng.randrange(largest) for _ in range(count - len(sizes))]
    rng.shuffle(sizes)
    return [bytes([33 + i % 90]) * size for i, size in enumerate(sizes)]


def _two_rounds(files: DataFiles, first: list[bytes], second: list[bytes]) -> list[Place]:
    """Append ``first`` and sync, then ``second`` and sync, and close: the places."""
    places = files.append(first)
    files.sync()
    places += files.append(second)
    files.sync()
    files.close()
    return places


def _read_all(files: DataFiles, places: list[Place]) -> list[bytes]:
    return [
        datafiles.read(files.directory, *place).encode() if place[2] else b"" for place in places
    ]


def test_appends_land_whole_across_blocks_and_buffers(tmp_path: Path) -> None:
    _direct_or_skip(tmp_path)
    path = tmp_path / "direct.dat"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | directio.open_flags(), 0o644)
    appender = DirectAppender(chunk=4 * BLOCK)  # small: appends cross whole buffers
    rng = random.Random(7)
    written = b""
    try:
        appender.start(fd)
        for _ in range(60):
            for _ in range(rng.randrange(1, 4)):  # a round of batches, then its flush
                blobs = _blobs(rng, rng.randrange(1, 6), 6 * BLOCK)
                appender.append(fd, blobs, len(written))
                written += b"".join(blobs)
            appender.flush(fd, len(written))
            on_disk = path.read_bytes()
            assert on_disk[: len(written)] == written
            assert len(on_disk) % BLOCK == 0 and not on_disk[len(written) :].strip(b"\0")
    finally:
        os.close(fd)


def test_the_buffer_must_hold_whole_blocks() -> None:
    with pytest.raises(ValueError, match="multiple of 4096"):
        DirectAppender(chunk=BLOCK + 512)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
def test_every_place_reads_back_its_blob_in_both_modes(tmp_path: Path, direct: bool) -> None:
    if direct:
        _direct_or_skip(tmp_path)
    files = DataFiles(tmp_path / "s.db", file_bytes=300_000, direct=direct)
    rng = random.Random(11)
    places: list[Place] = []
    blobs: list[bytes] = []
    for _ in range(40):
        batch = [b"\xc3\xa9" * (size // 2) for size in map(len, _blobs(rng, 5, 40_000))]
        places += files.append(batch)
        blobs += batch
        files.sync()
    files.close()
    assert files.direct is direct
    assert len(files.files()) > 2  # the batches filled several files
    assert _read_all(files, places) == blobs


def test_a_file_system_that_refuses_direct_opens_gets_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def no_direct(path: Any, flags: int, mode: int = 0o777) -> int:
        if flags & directio.open_flags():
            real_open(path, flags & ~directio.open_flags(), mode)  # as some do: then refuse
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", no_direct)
    files = DataFiles(tmp_path / "s.db", direct=True)
    places = _two_rounds(files, [b"x" * 5000, b"y" * 3], [b"z" * 7])
    assert not files.direct
    assert _read_all(files, places) == [b"x" * 5000, b"y" * 3, b"z" * 7]
    assert files.files() == [1]
    assert (files.directory / "1.dat").stat().st_size == 5010  # no padding: not direct


def test_a_file_system_that_refuses_direct_writes_gets_buffered_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _direct_or_skip(tmp_path)
    real_pwritev = os.pwritev
    refused: list[int] = []

    def refuse_once(fd: int, buffers: Any, offset: int) -> int:
        if not refused:  # the first write to a new file tells
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwritev(fd, buffers, offset)

    monkeypatch.setattr(os, "pwritev", refuse_once)
    files = DataFiles(tmp_path / "s.db", direct=True)
    places = _two_rounds(files, [b"a" * 10, b"b" * 5000], [b"c" * 7])
    assert refused and not files.direct
    assert _read_all(files, places) == [b"a" * 10, b"b" * 5000, b"c" * 7]


def test_a_short_direct_write_fails_the_round_and_the_next_starts_a_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _direct_or_skip(tmp_path)
    files = DataFiles(tmp_path / "s.db", direct=True)
    files.append([b"a" * 10])
    monkeypatch.setattr(os, "pwritev", lambda fd, buffers, offset: 100)
    with pytest.raises(OSError, match="stopped after 100 bytes"):
        files.sync()  # where the round's bytes are written out
    monkeypatch.undo()
    (place,) = files.append([b"c" * 10])
    files.sync()
    files.close()
    assert place[:3] == (2, 0, 10) and files.direct
    assert _read_all(files, [place]) == [b"c" * 10]
