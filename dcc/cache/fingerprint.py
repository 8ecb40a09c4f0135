"""Fingerprints: the content-derived parts of a node key (files, operator code, parameters).

A key must change when what a node computes could change, and only then. This module turns
each kind of input into a digest: files by their content (with a stat cache so an unchanged
file is not re-read on a no-op rebuild), operator code by its source and declared version, and
parameter values through a `functools.singledispatch` `fingerprint` so new value types get their
own registered function. A type nobody registered raises `Unfingerprintable`: the engine then
marks the node uncacheable and says why, rather than hashing a constant and serving a fake hit.

The stat cache follows git's racy-index rule: an entry is only recorded when the file's mtime
and ctime are comfortably in the past, so an edit made in the same clock tick as the hash can
never hide behind a matching stat. ctime is part of the signature because `touch -d` or
`os.utime` can restore size and mtime after an edit, but nothing can restore ctime.
"""

from __future__ import annotations

import functools
import os
import stat
import time
from collections.abc import MutableMapping
from typing import Any

from dcc.cache.hashing import canonical_bytes, digest, hash_file

# The stat cache maps an absolute path to (size, mtime_ns, ctime_ns, inode, content).
# Any MutableMapping[str, tuple[Any, ...]] will do; DiskStore.stat_cache is a persistent one.
StatCache = MutableMapping[str, tuple[Any, ...]]

# Stat entries whose mtime or ctime lies within this window of "now" are never recorded.
RACY_NS = 2_000_000_000


class Unfingerprintable(TypeError):
    """A value has no registered fingerprint; the node using it cannot be cached."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _is_racy(st: os.stat_result, now_ns: int) -> bool:
    # Also true for timestamps in the future (clock skew): never trust those either.
    return max(st.st_mtime_ns, st.st_ctime_ns) > now_ns - RACY_NS


def file_content(
    path: str | os.PathLike[str], stat_cache: StatCache | None, *, now_ns: int | None = None
) -> str:
    """Content hash of a file, re-reading it only when its stat signature changed.

    A directory is hashed as the sorted list of (relative path, content) of the files under it,
    so a dataset saved as a folder is keyed by content too. `now_ns` defaults to the wall clock;
    tests pass a later time to step out of the racy window without sleeping.
    """
    apath = os.path.abspath(path)
    st = os.stat(apath)
    if stat.S_ISDIR(st.st_mode):
        return _tree_content(apath, stat_cache, now_ns)
    sig = _signature(st)
    if stat_cache is not None:
        entry = stat_cache.get(apath)
        if entry is not None and tuple(entry[:4]) == sig:
            return str(entry[4])
    content = hash_file(apath)
    if stat_cache is not None:
        if _is_racy(st, time.time_ns() if now_ns is None else now_ns):
            stat_cache.pop(apath, None)
        else:
            stat_cache[apath] = (*sig, content)
    return content


def _tree_content(root: str, stat_cache: StatCache | None, now_ns: int | None) -> str:
    listing: list[list[str]] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            listing.append([rel, file_content(full, stat_cache, now_ns=now_ns)])
    listing.sort()
    return digest(canonical_bytes({"tree": listing}))


def code_fingerprint(source: str, version: int) -> str:
    """Fingerprint of an operator's code: its source text and its declared version.

    The raw text is hashed (no AST normalisation): a comment edit costs one rebuild, but keys
    do not depend on the Python version's AST format, so a shared cache stays warm across them.
    """
    if not isinstance(source, str) or isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(
            f"code_fingerprint needs (str, int) (got {type(source).__name__}, "
            f"{type(version).__name__})"
        )
    return digest(canonical_bytes({"source": source, "version": version}))


@functools.singledispatch
def fingerprint(value: object) -> str:
    """Fingerprint of a parameter value; register a function per new value type.

    >>> fingerprint({"min": 1}) == fingerprint({"min": 1.0})
    False
    >>> fingerprint(object())
    Traceback (most recent call last):
    ...
    dcc.cache.fingerprint.Unfingerprintable: no fingerprint for a value of type builtins.object
    """
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise Unfingerprintable(f"no fingerprint for a value of type {kind}")


@fingerprint.register(dict)
@fingerprint.register(list)
@fingerprint.register(tuple)
@fingerprint.register(str)
@fingerprint.register(bytes)
@fingerprint.register(int)
@fingerprint.register(float)
@fingerprint.register(bool)
@fingerprint.register(type(None))
def _fingerprint_plain(value: Any) -> str:
    try:
        return digest(canonical_bytes(value))
    except TypeError as e:  # a nested value of an unknown type
        raise Unfingerprintable(str(e)) from e


__all__ = [
    "RACY_NS",
    "StatCache",
    "Unfingerprintable",
    "code_fingerprint",
    "file_content",
    "fingerprint",
]
