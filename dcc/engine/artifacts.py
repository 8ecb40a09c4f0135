"""Datasets <-> stored artifacts: the one place the engine turns tables into bytes.

An artifact is one of two things:

* a table: one Arrow IPC file, written from a single rechunked batch without compression, so
  the same table always gives the same bytes (and so the same content hash, which is what
  early cutoff compares);
* a view (a row-selection artifact): a node whose output is a subset of the rows of its input,
  in the same order, with the same columns and types (a filter, a stage of filters, an
  operator's `select_rows`), is stored as the content of a BASE table plus the selected row
  indices. A view of a view is flattened: the base is always a table. Layout (little-endian):

      b"DCCVIEW1" | base content (32 ASCII hex) | base rows (u64) | selected rows (u64)
      | encoding (u8: 0 = u32 indices, 1 = u64 indices, 2 = bitmap of the base's rows)
      | payload

  The encoding is the smaller of the index list and the bitmap (indices on a tie), so the
  same selection over the same base always gives the same bytes.

Reading a view verifies and maps its base and takes the rows; a missing or corrupt base raises
MissingObject/CorruptObject like a bad table, so the engine rebuilds. The store knows only
bytes (and the view header, to keep bases alive); this module knows Arrow.

DCC_NO_VIEWS=1 turns writing views off (everything is materialized), for tests and comparison.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dcc.cache.base import CorruptObject, MissingObject
from dcc.cache.store import VIEW_MAGIC, DiskStore

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_TAIL = struct.Struct("<QQB")
_U32, _U64, _BITMAP = 0, 1, 2


def views_enabled() -> bool:
    return os.environ.get("DCC_NO_VIEWS", "") in ("", "0")


@dataclass
class Origin:
    """Where an in-memory table's rows live in the store: `base` (a table artifact) and the
    selected rows of it (None: all of them, in order; the table IS the base)."""

    base: str
    base_rows: int
    rows: np.ndarray | None = None

    def select(self, idx: np.ndarray) -> Origin:
        """The origin of a selection `idx` (row positions) of this table."""
        return Origin(self.base, self.base_rows, idx if self.rows is None else self.rows[idx])


def write_table(df: pl.DataFrame, store: DiskStore) -> str:
    """Store a table as an immutable artifact; returns its content hash."""
    tmp = store.temp_path(".arrow")
    try:
        df.rechunk().write_ipc(tmp, compression="uncompressed")
        return store.commit(tmp)
    finally:
        tmp.unlink(missing_ok=True)


def encode_view(base: str, base_rows: int, rows: np.ndarray) -> bytes:
    import numpy as np

    rows = np.asarray(rows, dtype=np.int64)
    n = len(rows)
    wide = base_rows > 0xFFFFFFFF
    idx_size = n * (8 if wide else 4)
    bitmap_size = (base_rows + 7) // 8
    if bitmap_size < idx_size:
        mask = np.zeros(base_rows, dtype=bool)
        mask[rows] = True
        enc, payload = _BITMAP, np.packbits(mask, bitorder="little").tobytes()
    else:
        enc = _U64 if wide else _U32
        payload = rows.astype("<u8" if wide else "<u4").tobytes()
    return VIEW_MAGIC + base.encode("ascii") + _TAIL.pack(base_rows, n, enc) + payload


def decode_view(data: bytes) -> tuple[str, int, np.ndarray]:
    """(base, base rows, selected rows) of a view's bytes; CorruptObject if malformed."""
    import numpy as np

    head = len(VIEW_MAGIC) + 32
    try:
        base = data[len(VIEW_MAGIC):head].decode("ascii")
        base_rows, n, enc = _TAIL.unpack_from(data, head)
    except (UnicodeDecodeError, struct.error) as e:
        raise CorruptObject(f"malformed view artifact: {e}") from None
    payload = memoryview(data)[head + _TAIL.size:]
    if enc == _BITMAP and len(payload) == (base_rows + 7) // 8:
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=base_rows,
                             bitorder="little")
        rows = np.flatnonzero(bits)
    elif enc in (_U32, _U64) and len(payload) == n * (4 if enc == _U32 else 8):
        rows = np.frombuffer(payload, dtype="<u4" if enc == _U32 else "<u8").astype(np.int64)
    else:
        raise CorruptObject("malformed view artifact (payload size)")
    if len(rows) != n or (n and (rows[-1] >= base_rows or np.any(np.diff(rows) <= 0))):
        raise CorruptObject("malformed view artifact (row indices)")
    return base, base_rows, rows


def write_view(store: DiskStore, origin: Origin) -> str:
    """Store a selection of a base table; returns its content (the base's own content when
    the selection is every row in order)."""
    import numpy as np

    rows = origin.rows
    if rows is None or (len(rows) == origin.base_rows
                        and np.array_equal(rows, np.arange(origin.base_rows))):
        return origin.base
    tmp = store.temp_path(".view")
    try:
        tmp.write_bytes(encode_view(origin.base, origin.base_rows, rows))
        return store.commit(tmp)
    finally:
        tmp.unlink(missing_ok=True)


def read_artifact(store: DiskStore, content: str,
                  verify: bool = True) -> tuple[pl.DataFrame, Origin]:
    """Load an artifact (a table or a view) and where its rows live; raises
    CorruptObject/MissingObject when it (or a view's base) cannot be trusted."""
    path = store.open_object(content, verify=verify)
    with open(path, "rb") as f:
        magic = f.read(len(VIEW_MAGIC))
        if magic != VIEW_MAGIC:
            df = _read_ipc(path)
            return df, Origin(content, df.height)
        data = magic + f.read()
    base, base_rows, rows = decode_view(data)
    try:
        base_path = store.open_object(base, verify=verify)
    except MissingObject:
        raise MissingObject(f"the base table {base} of view {content} is missing; "
                            "the node will be rebuilt") from None
    with open(base_path, "rb") as f:
        if f.read(len(VIEW_MAGIC)) == VIEW_MAGIC:
            raise CorruptObject(f"view {content} names another view as its base")
    table = _read_ipc(base_path)
    if table.height != base_rows:
        raise CorruptObject(f"view {content}: its base has {table.height} rows, not {base_rows}")
    return table[rows], Origin(base, base_rows, rows)


def read_table(store: DiskStore, content: str, verify: bool = True) -> pl.DataFrame:
    """Load an artifact; raises CorruptObject/MissingObject when it cannot be trusted."""
    return read_artifact(store, content, verify)[0]


def _read_ipc(path: os.PathLike[str] | str) -> pl.DataFrame:
    import polars as pl
    import pyarrow as pa
    import pyarrow.ipc as ipc

    # Memory-mapped and zero-copy: objects are immutable, so the mapping stays valid, and
    # this is ~7x faster than polars' own read_ipc, which copies every buffer.
    try:
        with pa.memory_map(str(path)) as source:
            table = ipc.open_file(source).read_all()
    except pa.ArrowInvalid as e:
        raise CorruptObject(f"unreadable table artifact {os.path.basename(path)}: {e}") from None
    return pl.from_arrow(table)


def schema_of(df: pl.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in df.schema.items()}
