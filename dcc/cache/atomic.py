"""Atomic writes: a file or folder appears complete under its final name, or not at all.

Builds can be killed at any moment (Ctrl-C, OOM killer, `kill -9`). Every writer in dcc — the
store's objects and the export writers elsewhere — writes into a temporary name in the
destination's own folder (so the final rename never crosses a filesystem), fsyncs, then
`os.replace`s it onto the destination and fsyncs the folder so the rename itself is durable.

Temporary names carry the writer's pid (`.dcc-tmp-<pid>-<random>`), which lets
`remove_stale_temps` delete what a killed writer left behind without ever touching the temp of
a writer that is still running. The pid test assumes writers share this machine's pid space.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".dcc-tmp-"


def temp_name(dest_dir: str | os.PathLike[str], suffix: str = "") -> Path:
    """A fresh temporary path in `dest_dir` that names this process as its writer."""
    return Path(dest_dir) / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}{suffix}"


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def atomic_file(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `dest`; on success it replaces `dest`, on error it is removed.

    The temp keeps `dest`'s suffixes, for writers that pick a format from the extension.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest.parent, "".join(dest.suffixes))
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"nothing was written to the temporary file for {dest}")
        fsync_path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise
    fsync_path(dest.parent)


@contextmanager
def atomic_dir(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temp folder beside `dest`; on success it replaces `dest` as a whole.

    An existing `dest` is first renamed aside to a temp name and deleted afterwards. A crash
    between those two renames leaves no `dest` (never a mix of old and new files); the aside
    copy is then a stale temp that `remove_stale_temps` clears.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest.parent)
    tmp.mkdir()
    try:
        yield tmp
        for folder, _dirs, files in os.walk(tmp):
            for name in files:
                fsync_path(os.path.join(folder, name))
            fsync_path(folder)
        aside = _swap_in(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise
    fsync_path(dest.parent)
    if aside is not None:
        _remove(aside)


def _swap_in(tmp: Path, dest: Path) -> Path | None:
    """Rename `tmp` onto `dest`, moving an existing `dest` aside first; return the aside path."""
    if not (dest.exists() or dest.is_symlink()):
        os.replace(tmp, dest)
        return None
    aside = temp_name(dest.parent)
    os.replace(dest, aside)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(aside, dest)  # put the old folder back
        raise
    return aside


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal still counts)."""
    if pid <= 0:
        return True  # not a real writer's pid: never treat it as dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writer_pid(name: str) -> int | None:
    if not name.startswith(TMP_PREFIX):
        return None
    pid, sep, _rest = name[len(TMP_PREFIX):].partition("-")
    return int(pid) if sep and pid.isdigit() else None


def remove_stale_temps(folder: str | os.PathLike[str]) -> int:
    """Delete temps in `folder` whose writer process is gone; return how many were removed."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        pid = _writer_pid(entry.name)
        if pid is None or pid_alive(pid):
            continue
        _remove(Path(entry.path))
        removed += 1
    return removed


__all__ = [
    "TMP_PREFIX",
    "atomic_dir",
    "atomic_file",
    "fsync_path",
    "pid_alive",
    "remove_stale_temps",
    "temp_name",
]
