"""What every store shares: the `Store` protocol, its value types and its errors.

Kept apart from `store.py` so a second implementation (in memory, or a team cache on an object
store) can implement the same protocol and run the same contract tests without importing the
disk store, and so `store.py` stays about one thing: the local layout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from dcc.errors import CacheError

_HASH = re.compile(r"[0-9a-f]{32}")


class CorruptObject(CacheError):
    """A stored object's bytes no longer match its hash; it was removed and must be rebuilt."""


class MissingObject(CorruptObject):
    """A record points to an object that is gone (deleted by hand or by a concurrent gc)."""


class LockTimeout(CacheError):
    """Another process held a node lock for longer than the caller was willing to wait."""


def check_hash(value: str) -> str:
    """Refuse anything that is not a 32-hex digest before it becomes part of a path."""
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise ValueError(f"not a dcc hash (32 lowercase hex characters): {value!r}")
    return value


@dataclass
class Record:
    """What a node key produced. JSON-safe, so the index holds plain text."""

    content: str
    rows: int
    schema: dict[str, Any]
    stats: dict[str, Any]
    node: str
    recipe: str
    created: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Build from stored JSON, ignoring fields a newer dcc may have added."""
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class EntryInfo:
    """One stored object as `dcc cache ls` shows it; node/recipe/rows are None if no record."""

    content: str
    size: int
    last_used: float
    node: str | None
    recipe: str | None
    rows: int | None


class IndexMap(MutableMapping[str, tuple[Any, ...]]):
    """A persistent str -> tuple mapping stored under a key prefix in a diskcache index."""

    def __init__(self, index: Any, prefix: str) -> None:
        self._index = index
        self._prefix = prefix

    def __getitem__(self, name: str) -> tuple[Any, ...]:
        raw = self._index.get(self._prefix + name)
        if raw is None:
            raise KeyError(name)
        return tuple(json.loads(raw))

    def __setitem__(self, name: str, value: tuple[Any, ...]) -> None:
        self._index.set(self._prefix + name, json.dumps(list(value)))

    def __delitem__(self, name: str) -> None:
        if not self._index.delete(self._prefix + name):
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        for key in list(self._index.iterkeys()):
            if isinstance(key, str) and key.startswith(self._prefix):
                yield key[n:]

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Store(Protocol):
    """The store API the engine and `dcc cache` use; see DiskStore for the semantics."""

    root: Path

    def lookup(self, key: str) -> Record | None: ...
    def save(self, key: str, record: Record) -> None: ...
    def temp_path(self, suffix: str = "") -> Path: ...
    def commit(self, tmp: Path) -> str: ...
    def has_object(self, content: str) -> bool: ...
    def object_path(self, content: str) -> Path: ...
    def verify_object(self, content: str) -> bool: ...
    def open_object(self, content: str, verify: bool) -> Path: ...
    def lock(self, key: str, timeout: float | None = None) -> AbstractContextManager[None]: ...
    def touch(self, content: str, at: float | None = None) -> None: ...
    @property
    def stat_cache(self) -> MutableMapping[str, tuple[Any, ...]]: ...
    def set_last_build(self, recipe_id: str, data: dict[str, Any]) -> None: ...
    def last_build(self, recipe_id: str) -> dict[str, Any] | None: ...
    def needed_contents(self) -> set[str]: ...
    def entries(self) -> list[EntryInfo]: ...
    def verify_all(self) -> list[str]: ...
    def gc(self, max_size: int, keep_needed: bool = True) -> tuple[int, int]: ...
    def remove_stale_temps(self) -> int: ...


__all__ = [
    "CorruptObject",
    "EntryInfo",
    "IndexMap",
    "LockTimeout",
    "MissingObject",
    "Record",
    "Store",
    "check_hash",
]
