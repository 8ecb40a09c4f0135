"""ObjectWriter and DiskStore.put_object: the bytes written are the bytes stored, the digest
computed while writing is the file's hash, on filesystems with and without O_DIRECT."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from dcc.cache.hashing import digest, hash_file
from dcc.cache.store import DiskStore
from dcc.cache.writer import CHUNK, ObjectWriter

SIZES = [0, 1, 4095, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345]


def folders(tmp_path: Path) -> list[Path]:
    out = [tmp_path]
    shm = Path("/dev/shm")  # tmpfs: refuses O_DIRECT, so the writer falls back
    if shm.is_dir() and os.access(shm, os.W_OK):
        out.append(shm)
    return out


@pytest.mark.parametrize("size", SIZES)
def test_bytes_and_digest_match_in_any_piece_sizes(tmp_path: Path, size: int) -> None:
    rng = random.Random(size)
    data = rng.randbytes(size)
    for folder in folders(tmp_path):
        path = folder / f"dcc-writer-test-{os.getpid()}-{size}"
        try:
            w = ObjectWriter(path)
            pos = 0
            while pos < size:  # pieces from 1 byte to more than a chunk
                n = min(size - pos, rng.choice([1, 100, 65536, CHUNK + 7]))
                assert w.write(memoryview(data)[pos:pos + n]) == n
                pos += n
            w.close()
            assert path.read_bytes() == data
            assert w.digest() == digest(data) == hash_file(path)
        finally:
            path.unlink(missing_ok=True)


def test_the_writer_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        ObjectWriter(tmp_path / "x")
    assert (tmp_path / "x").read_bytes() == b"keep"


def test_put_object_stores_by_hash_and_leaves_no_temp_on_failure(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(CHUNK + 99)
    with DiskStore(tmp_path / "s") as store:
        content = store.put_object(lambda f: f.write(data), ".bin")
        assert content == digest(data)
        assert store.object_path(content).read_bytes() == data
        assert store.verify_object(content)

        def fail(f: ObjectWriter) -> None:
            f.write(data)
            raise RuntimeError("writer died")

        with pytest.raises(RuntimeError):
            store.put_object(fail)
        assert list((tmp_path / "s" / "tmp").iterdir()) == []


def test_a_filesystem_that_refuses_direct_writes_gets_buffered_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import fcntl

    real_write = os.write
    refused = []

    def write(fd: int, data: bytes) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0):
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    data = random.Random(2).randbytes(2 * CHUNK + 5)
    w = ObjectWriter(tmp_path / "x")
    w.write(data)
    w.close()
    assert (tmp_path / "x").read_bytes() == data and w.digest() == digest(data)
    assert refused == ([CHUNK] if getattr(os, "O_DIRECT", 0) else [])
