"""Node keys from a compiled node and the *content* of its inputs.

A source's inputs are the content hashes of its files (through the store's stat cache, so an
unchanged file is not re-read); every other node's inputs are the content hashes of its input
artifacts. That is what gives early cutoff: a node that re-runs and produces the same bytes
leaves every downstream key unchanged.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from dcc.cache.fingerprint import Unfingerprintable, code_fingerprint, file_content, fingerprint
from dcc.cache.keys import KeyParts
from dcc.cache.store import DiskStore
from dcc.compiler.ir import Node
from dcc.errors import DataError
from dcc.ops.base import Op


@lru_cache(maxsize=None)
def op_code(cls: type[Op]) -> str:
    return code_fingerprint(cls.code_source(), cls.version)


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


def node_parts(node: Node, inputs: tuple[str, ...],
               stat_cache: Any = None) -> tuple[KeyParts | None, str | None]:
    """(parts, None) for a cacheable node, or (None, reason) when something cannot be keyed."""
    op = node.op
    params = op.key_params()
    try:
        fingerprint(params)
        model = op.model_identity(stat_cache)
    except Unfingerprintable as e:
        return None, f"uncacheable: {e}"
    seed = params.get("seed") if op.stochastic else None
    parts = KeyParts(op=op.name, op_version=op.version, code=op_code(type(op)), params=params,
                     model=model, seed=seed, inputs=inputs)
    return parts, None
