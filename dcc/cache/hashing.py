"""Canonical bytes and the one hasher: the only place in dcc where digests are made.

A cache key is only as good as the bytes it hashes. Two values that mean different things must
never encode alike (`1` and `1.0`, `"1"` and `1`, `[1, [2]]` and `[[1], 2]`), and one value must
always encode alike (a dict built in any order). `canonical_bytes` gives every value an explicit
type tag and a length, sorts dict keys, and refuses anything it does not know instead of
falling back to `repr` or a constant: a fake hit is worse than a miss (STYLE principle 11).

Every digest is xxh3-128 as 32 lowercase hex characters. Keeping `digest` and `hash_file` here
means a change of hash function is one edit and one golden-key update, never a silent mix.
"""

from __future__ import annotations

import mmap
import os
from typing import Any

import xxhash

# Files at least this large are hashed through mmap: reading into a buffer costs a copy out of
# the page cache that halves throughput, while mmap hashes the cached pages in place.
MMAP_MIN = 1 << 20
# Chunk for files read with readinto (small files, or filesystems without mmap).
CHUNK = 1 << 19
# Bytes of a mapping hashed at a time while the next ones are read ahead.
WINDOW = 64 << 20


def digest(data: bytes | bytearray | memoryview) -> str:
    """The xxh3-128 hex digest of `data` (32 hex characters).

    >>> digest(b"")
    '99aa06d3014798d86001c324468d497f'
    """
    return xxhash.xxh3_128_hexdigest(data)


def canonical_bytes(obj: Any, exclude: tuple[str, ...] = ()) -> bytes:
    """Deterministic, type-tagged encoding of a JSON-like value.

    Supports None, bool, int, float, str, bytes, list/tuple (encoded alike, so a value that
    went through JSON keeps its encoding) and dicts with str keys (sorted). `exclude` drops
    top-level dict keys. Anything else raises TypeError naming the type and where it sits.

    >>> canonical_bytes(1) == canonical_bytes(1.0)
    False
    >>> canonical_bytes({"b": 1, "a": 2}) == canonical_bytes({"a": 2, "b": 1})
    True
    >>> canonical_bytes({"a": 1, "seed": 7}, exclude=("seed",)) == canonical_bytes({"a": 1})
    True
    """
    if exclude:
        if not isinstance(obj, dict):
            raise TypeError(f"exclude= needs a dict at the top level (got {type(obj).__name__})")
        obj = {k: v for k, v in obj.items() if k not in exclude}
    out: list[bytes] = []
    _encode(obj, out, "value")
    return b"".join(out)


def _sized(tag: bytes, payload: bytes) -> bytes:
    return b"%s%d:%s" % (tag, len(payload), payload)


def _encode(obj: Any, out: list[bytes], where: str) -> None:
    # bool before int: bool is a subclass of int but must never encode like 0 or 1.
    if obj is None:
        out.append(b"N")
    elif obj is True:
        out.append(b"T")
    elif obj is False:
        out.append(b"F")
    elif isinstance(obj, int):
        out.append(_sized(b"i", b"%d" % obj))
    elif isinstance(obj, float):
        # float.hex is exact and round-trips; it also tells -0.0 from 0.0.
        out.append(_sized(b"f", obj.hex().encode("ascii")))
    elif isinstance(obj, str):
        out.append(_sized(b"s", obj.encode("utf-8", "surrogatepass")))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        out.append(_sized(b"b", bytes(obj)))
    elif isinstance(obj, (list, tuple)):
        out.append(b"l%d:" % len(obj))
        for i, item in enumerate(obj):
            _encode(item, out, f"{where}[{i}]")
    elif isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(
                    f"dict keys must be str for hashing (got {type(key).__name__} {key!r} "
                    f"in {where})"
                )
        out.append(b"d%d:" % len(obj))
        for key in sorted(obj):
            _encode(key, out, where)
            _encode(obj[key], out, f"{where}[{key!r}]")
    else:
        raise TypeError(
            f"cannot hash a value of type {type(obj).__module__}.{type(obj).__qualname__} "
            f"(in {where}); only None, bool, int, float, str, bytes, list, tuple and dict are "
            "hashable as canonical bytes"
        )


def hash_file(path: str | os.PathLike[str]) -> str:
    """The xxh3-128 digest of a file's bytes, equal to `digest(Path(path).read_bytes())`.

    Large files are hashed through a read-only mmap (as git does): no copy, so hashing runs at
    about the speed of hashing bytes already in memory. A file truncated by another process
    while it is being hashed can fault the process, the same trade-off git makes.
    """
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        if size >= MMAP_MIN:
            try:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    return _hash_mapped(mm)
            except (OSError, ValueError):
                f.seek(0)  # a filesystem without mmap: fall back to reading
        return _hash_stream(f)


def _hash_mapped(mm: mmap.mmap) -> str:
    """Hash a mapping a window at a time, asking the kernel to read the next window ahead: a
    file not in the page cache (an artifact written with O_DIRECT) is then read in large
    requests; hashed in one call it faults in page by page, ~4x slower on a VM (measured:
    1.5 s against 0.36 s for 512 MB). In the cache it makes no difference."""
    hasher = xxhash.xxh3_128()
    size = len(mm)
    ahead = hasattr(mm, "madvise")
    if ahead:
        mm.madvise(mmap.MADV_SEQUENTIAL)
    with memoryview(mm) as view:
        for start in range(0, size, WINDOW):
            end = min(size, start + WINDOW)
            if ahead and end < size:
                mm.madvise(mmap.MADV_WILLNEED, end, min(WINDOW, size - end))
            hasher.update(view[start:end])
    return hasher.hexdigest()


def _hash_stream(f: Any) -> str:
    hasher = xxhash.xxh3_128()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := f.readinto(buf):
        hasher.update(view[:n])
    return hasher.hexdigest()


__all__ = ["canonical_bytes", "digest", "hash_file"]
