"""The content-addressed cache: hashing, keys, the object store and the row memo.

Importing `dcc.cache` loads nothing but this file: the engine's no-op rebuild path and
`dcc --help` must stay fast, so `open_store` and the names below import their submodule (and
diskcache) only when first used (PEP 562 module `__getattr__`). The cache knows bytes and keys,
never operators: nothing here imports `dcc.ops`, `dcc.engine`, `dcc.compiler` or `dcc.cli`.

>>> import dcc.cache
>>> dcc.cache.KeyParts.__module__
'dcc.cache.keys'
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dcc.cache.base import CorruptObject, EntryInfo, Record, Store  # noqa: F401
    from dcc.cache.fingerprint import Unfingerprintable, file_content  # noqa: F401
    from dcc.cache.hashing import canonical_bytes, digest, hash_file  # noqa: F401
    from dcc.cache.keys import KEY_SCHEMA, KeyParts, diff_parts  # noqa: F401
    from dcc.cache.rowmemo import RowMemo, row_hash  # noqa: F401
    from dcc.cache.store import DiskStore

# Public name -> the submodule that defines it. `fingerprint` is not here: that name is the
# submodule itself (use `dcc.cache.fingerprint.fingerprint`).
_LAZY = {
    "digest": "hashing", "canonical_bytes": "hashing", "hash_file": "hashing",
    "file_content": "fingerprint",
    "code_fingerprint": "fingerprint", "Unfingerprintable": "fingerprint",
    "KEY_SCHEMA": "keys", "KeyParts": "keys", "diff_parts": "keys",
    "Store": "base", "Record": "base", "EntryInfo": "base", "CorruptObject": "base",
    "DiskStore": "store", "RowMemo": "rowmemo", "row_hash": "rowmemo",
    "parse_size": "gc", "atomic_file": "atomic", "atomic_dir": "atomic",
}


def open_store(root: str | os.PathLike[str]) -> DiskStore:
    """Open (creating if needed) the embedded store in `root`, e.g. a recipe's `.dcc/`."""
    from dcc.cache.store import DiskStore

    return DiskStore(root)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dcc.cache' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"dcc.cache.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = ["open_store", *_LAZY]
