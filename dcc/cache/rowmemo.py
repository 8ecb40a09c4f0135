"""Per-row memo for expensive row-wise operators (model calls).

A model operator's node key changes whenever its input dataset changes, so the node cache alone
would re-run every row after adding one. Results are therefore also filed per row, under the
operator's key WITHOUT inputs (`KeyParts.memo_key()`) and a hash of the row: adding 1% new rows
costs about 1% of the calls. `put_many` commits each batch at once, so a build killed at 90%
resumes at 90%. Values are opaque bytes; the engine decides how a row result is encoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dcc.cache.base import check_hash
from dcc.cache.hashing import canonical_bytes, digest
from dcc.cache.store import DiskStore


def row_hash(obj: Any) -> str:
    """The hash a row is memoized under: digest of its canonical bytes.

    >>> row_hash({"text": "hi", "id": 1}) == row_hash({"id": 1, "text": "hi"})
    True
    """
    return digest(canonical_bytes(obj))


class RowMemo:
    """Row results of one operator configuration, backed by the store's root/rowmemo cache."""

    def __init__(self, store: DiskStore, op_key: str) -> None:
        self.op_key = check_hash(op_key)
        self._cache = store.rowmemo_cache()

    def _name(self, row: str) -> str:
        return f"{self.op_key}:{row}"

    def get_many(self, row_hashes: Iterable[str]) -> dict[str, bytes]:
        """The memoized results among `row_hashes` (missing rows are simply absent)."""
        found: dict[str, bytes] = {}
        for row in row_hashes:
            value = self._cache.get(self._name(row))
            if value is not None:
                found[row] = value
        return found

    def put_many(self, items: dict[str, bytes]) -> None:
        """Store results, committed before returning (one transaction per call)."""
        for value in items.values():
            if not isinstance(value, (bytes, bytearray)):
                raise TypeError(f"row results must be bytes (got {type(value).__name__})")
        with self._cache.transact():
            for row, value in items.items():
                self._cache.set(self._name(row), bytes(value))

    def count(self, row_hashes: Iterable[str]) -> int:
        """How many of `row_hashes` are memoized, counting repeats (for `dcc plan`)."""
        return sum(1 for row in row_hashes if self._name(row) in self._cache)


REQUESTS_NAMESPACE = digest(b"dcc-model-requests/1")


def request_memo(store: DiskStore) -> RowMemo:
    """The memo of raw model replies by exact request (`dcc.ops.models.memo`), shared by
    every node and recipe that uses this store."""
    return RowMemo(store, REQUESTS_NAMESPACE)


__all__ = ["REQUESTS_NAMESPACE", "RowMemo", "request_memo", "row_hash"]
