"""atomic_file / atomic_dir publish all or nothing; stale temps go only when their writer did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dcc.cache.atomic import (
    TMP_PREFIX,
    atomic_dir,
    atomic_file,
    pid_alive,
    remove_stale_temps,
    temp_name,
)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TMP_PREFIX))


def test_temp_name_names_the_writer(tmp_path: Path) -> None:
    a, b = temp_name(tmp_path, ".parquet"), temp_name(tmp_path)
    assert a.parent == tmp_path and a != b
    assert a.name.startswith(f"{TMP_PREFIX}{os.getpid()}-") and a.name.endswith(".parquet")


def test_atomic_file_publishes_on_success(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "data.jsonl.gz"
    with atomic_file(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.endswith(".jsonl.gz")
        tmp.write_bytes(b"new")
        assert not dest.exists()
    assert dest.read_bytes() == b"new"
    assert leftovers(dest.parent) == []


def test_atomic_file_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    dest = tmp_path / "data.jsonl"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert dest.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_atomic_file_with_nothing_written_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing was written"), \
            atomic_file(tmp_path / "x"):
        pass
    assert not (tmp_path / "x").exists()


def test_atomic_dir_replaces_a_folder_as_a_whole(tmp_path: Path) -> None:
    dest = tmp_path / "ds"
    dest.mkdir()
    (dest / "old.arrow").write_bytes(b"old")
    with atomic_dir(dest) as tmp:
        assert tmp.is_dir() and list(tmp.iterdir()) == []
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.arrow").write_bytes(b"new")
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["sub", "sub/new.arrow"]
    assert leftovers(tmp_path) == []


def test_atomic_dir_keeps_the_old_folder_on_error(tmp_path: Path) -> None:
    dest = tmp_path / "ds"
    dest.mkdir()
    (dest / "old.arrow").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_dir(dest) as tmp:
        (tmp / "new.arrow").write_bytes(b"new")
        raise RuntimeError("writer failed")
    assert [p.name for p in dest.iterdir()] == ["old.arrow"]
    assert leftovers(tmp_path) == []


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert pid_alive(0) and pid_alive(-1)  # never "dead": os.kill(0, ...) means our group


def test_remove_stale_temps_only_for_dead_writers(tmp_path: Path, dead_pid: int) -> None:
    dead_file = tmp_path / f"{TMP_PREFIX}{dead_pid}-abc.arrow"
    dead_dir = tmp_path / f"{TMP_PREFIX}{dead_pid}-def"
    live = temp_name(tmp_path)
    parent = tmp_path / f"{TMP_PREFIX}{os.getppid()}-0"
    others = [tmp_path / "data.arrow", tmp_path / f"{TMP_PREFIX}notapid-1",
              tmp_path / f"{TMP_PREFIX}0-1"]
    for path in [dead_file, live, parent, *others]:
        path.write_bytes(b"x")
    dead_dir.mkdir()
    (dead_dir / "part.arrow").write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == 2
    assert not dead_file.exists() and not dead_dir.exists()
    assert all(p.exists() for p in [live, parent, *others])
    assert remove_stale_temps(tmp_path) == 0
    assert remove_stale_temps(tmp_path / "missing") == 0
