"""Datasets <-> stored artifacts: the one place the engine turns tables into bytes.

An artifact is one Arrow IPC file, written from a single rechunked batch without
compression, so the same table always gives the same bytes (and so the same content hash,
which is what early cutoff compares). The store knows only bytes; this module knows Arrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dcc.cache.store import DiskStore

if TYPE_CHECKING:
    import polars as pl


def write_table(df: pl.DataFrame, store: DiskStore) -> str:
    """Store a table as an immutable artifact; returns its content hash."""
    tmp = store.temp_path(".arrow")
    try:
        df.rechunk().write_ipc(tmp, compression="uncompressed")
        return store.commit(tmp)
    finally:
        tmp.unlink(missing_ok=True)


def read_table(store: DiskStore, content: str, verify: bool = True) -> pl.DataFrame:
    """Load an artifact; raises CorruptObject/MissingObject when it cannot be trusted."""
    import polars as pl

    path = store.open_object(content, verify=verify)
    return pl.read_ipc(path)


def schema_of(df: pl.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in df.schema.items()}
