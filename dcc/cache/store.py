"""The embedded store: key -> record in a diskcache index, content -> immutable object file.

Two maps kept apart (as in Hamilton and DVC): the index says which content a node key produced,
and `objects/<c[:2]>/<c>` holds each content once. Early cutoff and dedup fall out of that
split. The store knows bytes and hashes, not operators or Arrow: the engine writes an artifact
into `temp_path()`, `commit` names it by its hash, and `save` files the record.

Crash safety without a recovery step: the index is sqlite (transactional), objects appear
only by rename after fsync, temps carry the writer's pid so only dead writers' temps are
cleared, and node locks are `flock`s that the kernel drops when a process dies, even by
`kill -9`. Index values are JSON text, so reading a cache never unpickles anything. Last use
of an object is its file's mtime (`touch` is one `utime` call, no index write on a no-op
rebuild). The record and protocol types live in `dcc.cache.base`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import diskcache

from dcc.cache import atomic
from dcc.cache.base import (
    CorruptObject,
    EntryInfo,
    IndexMap,
    LockTimeout,
    MissingObject,
    Record,
    Store,
    check_hash,
)
from dcc.cache.gc import select_victims
from dcc.cache.hashing import hash_file
from dcc.cache.writer import ObjectWriter
from dcc.errors import CacheError

if TYPE_CHECKING:
    from dcc.cache.remote import RemoteCache
    from dcc.cache.rowmemo import MemoDB

_KEY, _STAT, _BUILD, _EXPORT, _PLAN = "key:", "stat:", "build:", "export:", "plan:"

# A row-selection artifact ("view", written by dcc.engine.artifacts) starts with this magic and
# the 32-hex content of its base table; so does a "patch" (a view plus columns of its own).
# The store reads only that much, to keep bases alive.
VIEW_MAGIC = b"DCCVIEW1"
PATCH_MAGIC = b"DCCPATCH"
VIEW_HEAD = len(VIEW_MAGIC) + 32


def read_view_base(path: str | os.PathLike[str]) -> str | None:
    """The base table's content if the file at `path` is a view or patch artifact, else None
    (also for an unreadable file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(VIEW_HEAD)
    except OSError:
        return None
    if len(head) < VIEW_HEAD or head[:len(VIEW_MAGIC)] not in (VIEW_MAGIC, PATCH_MAGIC):
        return None
    try:
        return check_hash(head[len(VIEW_MAGIC):].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


class DiskStore:
    """A `Store` in a local folder (`.dcc/` by default); safe for concurrent processes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        try:
            for sub in ("objects", "tmp", "locks", "rowmemo"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            self._index = diskcache.Cache(
                str(self.root / "index"), eviction_policy="none", statistics=0
            )
        except OSError as e:
            raise CacheError(
                f"cannot use cache directory '{self.root}': {e.strerror or e}; "
                "pass --cache-dir or set DCC_CACHE_DIR to a writable folder"
            ) from e
        self._stat_cache = IndexMap(self._index, _STAT)
        self._export_state = IndexMap(self._index, _EXPORT)
        self._plan_memo = IndexMap(self._index, _PLAN)
        self._rowmemo: MemoDB | None = None
        self._memo_remote: RemoteCache | None = None

    def close(self) -> None:
        self._index.close()
        if self._rowmemo is not None:
            self._rowmemo.close()

    def __enter__(self) -> DiskStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- key -> record ---------------------------------------------------------------------
    def lookup(self, key: str) -> Record | None:
        """The record of `key`, or None if absent or if its object is gone (then dropped)."""
        raw = self._index.get(_KEY + key)
        if raw is None:
            return None
        try:
            record = Record.from_dict(json.loads(raw))
        except (ValueError, TypeError, KeyError):
            record = None
        if (record is None or not self.has_object(record.content)
                or not self._base_ok(record.content)):  # a view whose base table is gone
            with self._index.transact():  # drop it unless someone replaced it meanwhile
                if self._index.get(_KEY + key) == raw:
                    self._index.delete(_KEY + key)
            return None
        return record

    def save(self, key: str, record: Record) -> None:
        self._index.set(_KEY + key, json.dumps(asdict(record), sort_keys=True))

    # -- content -> object -----------------------------------------------------------------
    def temp_path(self, suffix: str = "") -> Path:
        """A fresh path in `root/tmp` for the engine to write an artifact into."""
        return atomic.temp_name(self.root / "tmp", suffix)

    def put_object(self, write: Callable[[ObjectWriter], None], suffix: str = "",
                   expect: str | None = None) -> str:
        """Store the bytes `write` writes into the file it is given; return their hash.

        The file is a temp that `dcc.cache.writer.ObjectWriter` hashes as it is written
        (large objects go around the page cache), then committed like any temp. With
        `expect` (the hash the caller computed beforehand), bytes that hash otherwise are
        refused, never stored."""
        tmp = self.temp_path(suffix)
        writer = ObjectWriter(tmp)
        try:
            write(writer)
            writer.close()
            content = writer.digest()
            if expect is not None and content != expect:
                raise CacheError(f"an artifact's bytes changed between hashing ({expect}) and "
                                 f"writing ({content}); nothing was stored")
            return self.commit(tmp, content=content)
        finally:
            writer.abort()
            tmp.unlink(missing_ok=True)

    def commit(self, tmp: str | os.PathLike[str], content: str | None = None) -> str:
        """Move a finished temp file into the object store under its hash; return the hash.

        `content` is the hash of the file's bytes when the writer computed it while writing
        them (ObjectWriter); otherwise the file is hashed here."""
        tmp = Path(tmp)
        content = hash_file(tmp) if content is None else check_hash(content)
        dest = self.object_path(content)
        dest.parent.mkdir(exist_ok=True)
        if dest.is_file() and dest.stat().st_size == tmp.stat().st_size:
            tmp.unlink()  # same bytes already stored
        else:
            atomic.fsync_path(tmp)
            os.chmod(tmp, 0o444)  # objects are immutable
            os.replace(tmp, dest)
            atomic.fsync_path(dest.parent)
        self.touch(content)
        return content

    def object_path(self, content: str) -> Path:
        check_hash(content)
        return self.root / "objects" / content[:2] / content

    def has_object(self, content: str) -> bool:
        return self.object_path(content).is_file()

    def verify_object(self, content: str) -> bool:
        """Re-hash an object; a mismatching one is deleted so it is rebuilt, never served."""
        path = self.object_path(content)
        try:
            if hash_file(path) == content:
                return True
        except FileNotFoundError:
            return False
        path.unlink(missing_ok=True)
        return False

    def view_base(self, content: str) -> str | None:
        """The base table's content if `content` is a view or patch artifact, else None."""
        return read_view_base(self.object_path(content))

    def _base_ok(self, content: str) -> bool:
        """False when `content` is a view whose base object is gone."""
        base = self.view_base(content)
        return base is None or self.has_object(base)

    def open_object(self, content: str, verify: bool) -> Path:
        """The path of a stored object; raises CorruptObject (or MissingObject) if unusable."""
        if not self.has_object(content):
            raise MissingObject(f"cached object {content} is missing; the node will be rebuilt")
        if verify and not self.verify_object(content):
            raise CorruptObject(
                f"cached object {content} does not match its hash and was removed; "
                "the node will be rebuilt"
            )
        self.touch(content)
        return self.object_path(content)

    def touch(self, content: str, at: float | None = None) -> None:
        """Record that `content` was used now (or at `at`, seconds since the epoch)."""
        # Gone, or another user's object in a shared cache: not worth failing a build for.
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.utime(self.object_path(content), None if at is None else (at, at))

    # -- coordination ----------------------------------------------------------------------
    @contextmanager
    def lock(self, key: str, timeout: float | None = None) -> Iterator[None]:
        """Hold an exclusive lock on `key` (a `flock`, dropped by the kernel if we die)."""
        check_hash(key)
        path = self.root / "locks" / key[:2] / f"{key}.lock"
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            _flock(fd, timeout, key)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @property
    def stat_cache(self) -> IndexMap:
        return self._stat_cache

    @property
    def export_state(self) -> IndexMap:
        """Export path -> (artifact content, file content) of what the last build wrote
        there, so an unchanged export is not rewritten."""
        return self._export_state

    @property
    def plan_memo(self) -> IndexMap:
        """What the optimizer learned from data (sampled selectivities), so a no-op rebuild
        plans without reading data again."""
        return self._plan_memo

    def rowmemo_db(self) -> MemoDB:
        """The sqlite table behind RowMemo (root/rowmemo), opened on first use."""
        if self._rowmemo is None:
            from dcc.cache.rowmemo import MemoDB

            self._rowmemo = MemoDB(self.root / "rowmemo")
            self._rowmemo.remote = self._memo_remote
        return self._rowmemo

    def share_memo(self, remote: RemoteCache | None) -> None:
        """Share the row memo through a team cache: a namespace is pulled from `remote`
        before its first lookup, and the namespaces written are pushed by
        `remote.flush_memo` (see dcc.cache.remote)."""
        self._memo_remote = remote
        if self._rowmemo is not None:
            self._rowmemo.remote = remote

    # -- builds ----------------------------------------------------------------------------
    def set_last_build(self, recipe_id: str, data: dict[str, Any]) -> None:
        """Remember the newest build of a recipe: node name -> {key, parts, content}."""
        self._index.set(_BUILD + recipe_id, json.dumps(data, sort_keys=True))

    def last_build(self, recipe_id: str) -> dict[str, Any] | None:
        raw = self._index.get(_BUILD + recipe_id)
        return None if raw is None else json.loads(raw)

    def needed_contents(self) -> set[str]:
        """Contents that the newest build of some recipe needs (gc keeps them)."""
        needed: set[str] = set()
        for name in self._keys(_BUILD):
            raw = self._index.get(name)
            data = json.loads(raw) if raw is not None else {}
            for node in data.values():
                if isinstance(node, dict) and isinstance(node.get("content"), str):
                    needed.add(node["content"])
        for content in list(needed):  # a needed view needs its base table
            with contextlib.suppress(ValueError):
                base = self.view_base(content)
                if base is not None:
                    needed.add(base)
        return needed

    # -- maintenance -----------------------------------------------------------------------
    def entries(self) -> list[EntryInfo]:
        """Every stored object with what produced it, most recently used first."""
        meta = {rec.content: rec for _key, rec in self._records()}
        out = []
        for content, st in self._objects():
            rec = meta.get(content)
            out.append(EntryInfo(
                content=content, size=st.st_size, last_used=st.st_mtime,
                node=rec.node if rec else None, recipe=rec.recipe if rec else None,
                rows=rec.rows if rec else None,
            ))
        return sorted(out, key=lambda e: (-e.last_used, e.content))

    def verify_all(self) -> list[str]:
        """Re-hash every object; return the contents that did not match (now removed)."""
        bad = sorted(c for c, _st in self._objects() if not self.verify_object(c))
        bad = sorted(set(bad) | set(self._drop_orphan_views()))
        if bad:
            self._drop_dangling_records()
        return bad

    def gc(self, max_size: int, keep_needed: bool = True) -> tuple[int, int]:
        """Delete least recently used objects until the store fits in `max_size` bytes.

        Never deletes what the newest build of a recipe needs unless `keep_needed=False`.
        Returns (objects removed, bytes freed); index records of removed objects are dropped.
        """
        if max_size < 0:
            raise ValueError(f"max_size must not be negative (got {max_size})")
        protected = self.needed_contents() if keep_needed else set()
        removed = freed = 0
        for entry in select_victims(self.entries(), max_size, protected):
            try:
                self.object_path(entry.content).unlink()
            except FileNotFoundError:
                continue
            removed += 1
            freed += entry.size
        if removed:
            sizes = {e.content: e.size for e in self.entries()}
            for content in self._drop_orphan_views():
                removed += 1
                freed += sizes.get(content, 0)
        self._drop_dangling_records()
        self.remove_stale_temps()
        return removed, freed

    def remove_stale_temps(self) -> int:
        """Delete temps in root/tmp left by writers that are no longer running."""
        return atomic.remove_stale_temps(self.root / "tmp")

    # -- helpers ---------------------------------------------------------------------------
    def _keys(self, prefix: str) -> list[str]:
        return [k for k in self._index.iterkeys() if isinstance(k, str) and k.startswith(prefix)]

    def _records(self) -> Iterator[tuple[str, Record]]:
        for name in self._keys(_KEY):
            raw = self._index.get(name)
            try:
                yield name, Record.from_dict(json.loads(raw))
            except (ValueError, TypeError, KeyError):
                continue

    def _objects(self) -> Iterator[tuple[str, os.stat_result]]:
        for shard in sorted(os.scandir(self.root / "objects"), key=lambda e: e.name):
            if not shard.is_dir():
                continue
            for obj in sorted(os.scandir(shard.path), key=lambda e: e.name):
                try:
                    check_hash(obj.name)
                    yield obj.name, obj.stat()
                except (ValueError, FileNotFoundError):
                    continue

    def _drop_orphan_views(self) -> list[str]:
        """Remove view objects whose base table is gone (unreadable); return them."""
        gone = []
        for content, _st in list(self._objects()):
            base = self.view_base(content)
            if base is not None and not self.has_object(base):
                self.object_path(content).unlink(missing_ok=True)
                gone.append(content)
        return gone

    def _drop_dangling_records(self) -> None:
        for name, rec in list(self._records()):
            if not self.has_object(rec.content):
                self._index.delete(name)


def _flock(fd: int, timeout: float | None, key: str) -> None:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"node {key} is locked by another build (waited {timeout}s)"
                ) from None
            time.sleep(0.01)


__all__ = [
    "CacheError",
    "CorruptObject",
    "DiskStore",
    "EntryInfo",
    "LockTimeout",
    "MissingObject",
    "Record",
    "Store",
]
