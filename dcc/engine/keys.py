"""Node keys from a compiled node and the *content* of its inputs.

A source's inputs are the content hashes of its files (through the store's stat cache, so an
unchanged file is not re-read); every other node's inputs are the content hashes of its input
artifacts. That is what gives early cutoff: a node that re-runs and produces the same bytes
leaves every downstream key unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from typing import Any

from dcc.cache.fingerprint import Unfingerprintable, code_fingerprint, file_content, fingerprint
from dcc.cache.keys import KeyParts
from dcc.cache.store import DiskStore
from dcc.compiler.ir import Node
from dcc.errors import DataError
from dcc.ops.base import Op


_CODE: dict[type[Op], str] = {}


def op_code(cls: type[Op], memo: MutableMapping[str, tuple] | None = None) -> str:
    """The fingerprint of an operator's code. Extracting a class's source costs ~5 ms, so the
    result is memoized per process and, with `memo`, across processes keyed by the stat of
    the files that define the class (edit a file and its operators are fingerprinted anew)."""
    if cls in _CODE:
        return _CODE[cls]
    key = _code_memo_key(cls) if memo is not None else None
    hit = memo.get(key) if memo is not None and key is not None else None
    if hit:
        _CODE[cls] = str(hit[0])
        return _CODE[cls]
    _CODE[cls] = code_fingerprint(cls.code_source(), cls.version)
    if memo is not None and key is not None:
        memo[key] = (_CODE[cls],)
    return _CODE[cls]


def _code_memo_key(cls: type[Op]) -> str | None:
    """The stat of every file the fingerprint reads: the modules of the classes in the MRO
    and the helper modules an operator adds (`dcc.ops.base.HelperCode`)."""
    files = set()
    modules = [klass.__module__ for klass in cls.__mro__ if klass is not object]
    helpers = getattr(cls, "code_helpers", None)
    if helpers is not None:
        modules += [ref.partition(":")[0] for ref in helpers()]
    for name in modules:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            files.add(path)
    try:
        sig = sorted((f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files)
    except OSError:
        return None
    return f"code:{cls.__module__}.{cls.__qualname__}:{cls.version}:{sig}"


def source_contents(node: Node, store: DiskStore) -> tuple[str, ...]:
    """Content hashes of a source's files; a missing file is a data error naming it."""
    out = []
    for path in node.op.files():  # type: ignore[attr-defined]
        try:
            out.append(file_content(path, store.stat_cache))
        except FileNotFoundError:
            raise DataError(f"{path}: no such file (source of '{node.name}')") from None
        except OSError as e:
            raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    return tuple(out)


def node_parts(node: Node, inputs: tuple[str, ...], stat_cache: Any = None,
               code_memo: MutableMapping[str, tuple] | None = None
               ) -> tuple[KeyParts | None, str | None]:
    """(parts, None) for a cacheable node, or (None, reason) when something cannot be keyed."""
    op = node.op
    params = op.key_params()
    try:
        fingerprint(params)
        model = op.model_identity(stat_cache)
    except Unfingerprintable as e:
        return None, f"uncacheable: {e}"
    seed = params.get("seed") if op.stochastic else None
    parts = KeyParts(op=op.name, op_version=op.version, code=op_code(type(op), code_memo), params=params,
                     model=model, seed=seed, inputs=inputs)
    return parts, None
