"""file_content's stat cache (reads avoided, edits never missed), code and param fingerprints."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from dcc.cache import fingerprint as fp
from dcc.cache.fingerprint import (
    RACY_NS,
    Unfingerprintable,
    code_fingerprint,
    file_content,
    fingerprint,
)
from dcc.cache.hashing import digest, hash_file
from dcc.cache.store import DiskStore

LATER = 10 * RACY_NS  # how far past the wall clock "now" is taken to be, to leave the racy window


def later() -> int:
    return time.time_ns() + LATER


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path file_content actually reads (hash_file is the only way it reads bytes)."""
    seen: list[str] = []

    def counting(path: Any) -> str:
        seen.append(str(path))
        return hash_file(path)

    monkeypatch.setattr(fp, "hash_file", counting)
    return seen


def edit_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """Overwrite in place with same-size bytes and put the old mtime back (like `touch -d`)."""
    before = path.stat()
    assert len(data) == before.st_size
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    while path.stat().st_ctime_ns == before.st_ctime_ns:  # coarse kernel clock: same tick
        time.sleep(0.005)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size, before.st_mtime_ns, before.st_ino)


def test_content_is_the_file_hash(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"text": "hi"}\n')
    assert file_content(path, None) == digest(path.read_bytes())
    assert file_content(str(path), {}, now_ns=later()) == digest(path.read_bytes())


def test_stat_cache_avoids_rereading(tmp_path: Path, reads: list[str]) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"x" * 1000)
    cache: dict[str, tuple] = {}
    first = file_content(path, cache, now_ns=later())
    assert len(reads) == 1 and list(cache) == [str(path)]
    for _ in range(3):
        assert file_content(path, cache, now_ns=later()) == first
    assert len(reads) == 1


def test_persistent_stat_cache_survives_reopening(tmp_path: Path, reads: list[str]) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"rows")
    with DiskStore(tmp_path / "store") as store:
        first = file_content(path, store.stat_cache, now_ns=later())
    with DiskStore(tmp_path / "store") as store:
        assert file_content(path, store.stat_cache, now_ns=later()) == first
    assert len(reads) == 1


def test_edit_keeping_size_and_mtime_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"aaaa")
    cache: dict[str, tuple] = {}
    old = file_content(path, cache, now_ns=later())
    edit_keeping_size_and_mtime(path, b"bbbb")
    assert file_content(path, cache, now_ns=later()) == digest(b"bbbb") != old


def test_replaced_file_with_same_size_and_mtime_is_noticed(tmp_path: Path) -> None:
    path, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    path.write_bytes(b"aaaa")
    cache: dict[str, tuple] = {}
    file_content(path, cache, now_ns=later())
    st = path.stat()
    other.write_bytes(b"bbbb")
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)  # new inode, same size and mtime
    assert file_content(path, cache, now_ns=later()) == digest(b"bbbb")


def test_racy_entries_are_not_recorded(tmp_path: Path, reads: list[str]) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"aaaa")
    cache: dict[str, tuple] = {}
    assert file_content(path, cache) == digest(b"aaaa")  # written just now: racy
    assert cache == {}
    # An edit in the same tick that restores size and mtime cannot hide behind an entry.
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(b"bbbb")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_content(path, cache) == digest(b"bbbb")
    assert len(reads) == 2


def test_racy_window_edges(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"aaaa")
    newest = max(path.stat().st_mtime_ns, path.stat().st_ctime_ns)
    cache: dict[str, tuple] = {}
    file_content(path, cache, now_ns=newest + RACY_NS - 1)
    assert cache == {}
    file_content(path, cache, now_ns=newest + RACY_NS + 1)
    assert str(path) in cache


def test_future_timestamps_are_never_trusted(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"aaaa")
    future = time.time_ns() + 3600 * 10**9
    os.utime(path, ns=(future, future))
    cache: dict[str, tuple] = {}
    file_content(path, cache)
    assert cache == {}


def test_a_stale_entry_is_replaced_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"aaaa")
    cache: dict[str, tuple] = {str(path): (4, 0, 0, 0, "f" * 32)}
    assert file_content(path, cache, now_ns=later()) == digest(b"aaaa")
    assert cache[str(path)][4] == digest(b"aaaa")


def test_directory_content_follows_its_files(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "sub").mkdir(parents=True)
    (root / "a.arrow").write_bytes(b"1")
    (root / "sub" / "b.arrow").write_bytes(b"2")
    cache: dict[str, tuple] = {}
    first = file_content(root, cache, now_ns=later())
    assert file_content(root, cache, now_ns=later()) == first
    (root / "sub" / "b.arrow").write_bytes(b"3")
    assert file_content(root, cache, now_ns=later()) != first
    (root / "sub" / "b.arrow").write_bytes(b"2")
    assert file_content(root, cache, now_ns=later()) == first
    (root / "sub" / "b.arrow").rename(root / "sub" / "c.arrow")
    assert file_content(root, cache, now_ns=later()) != first


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_content(tmp_path / "nope.jsonl", {})


def test_code_fingerprint() -> None:
    src = "class A:\n    pass\n"
    assert code_fingerprint(src, 1) == code_fingerprint(src, 1)
    assert code_fingerprint(src, 2) != code_fingerprint(src, 1)
    assert code_fingerprint(src + "# x\n", 1) != code_fingerprint(src, 1)
    with pytest.raises(TypeError):
        code_fingerprint(src, True)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [
    None, True, 0, 1.5, "s", b"b", [1, "a"], (1, 2), {"a": [1, {"b": None}]},
])
def test_plain_params_fingerprint(value: Any) -> None:
    assert len(fingerprint(value)) == 32


def test_fingerprint_keeps_types_apart() -> None:
    assert len({fingerprint(1), fingerprint(1.0), fingerprint(True), fingerprint("1")}) == 4


@pytest.mark.parametrize("value", [object(), {1, 2}, {"p": Path("x")}, [1, 2j]])
def test_unknown_types_are_unfingerprintable(value: Any) -> None:
    with pytest.raises(Unfingerprintable) as info:
        fingerprint(value)
    assert isinstance(info.value, TypeError)
    assert info.value.reason and "type" in info.value.reason


def test_new_types_register_their_own_fingerprint() -> None:
    class Model:
        def __init__(self, rev: str) -> None:
            self.rev = rev

    @fingerprint.register(Model)
    def _(value: Model) -> str:
        return fingerprint({"model": value.rev})

    assert fingerprint(Model("r1")) != fingerprint(Model("r2"))
