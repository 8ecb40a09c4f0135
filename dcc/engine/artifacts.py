"""Datasets <-> stored artifacts: the one place the engine turns tables into bytes.

An artifact is one of two things:

* a table: one Arrow IPC file, written from a single rechunked batch without compression, text
  as offset-based large_string (not polars' string views), so the same table always gives the
  same bytes (and so the same content hash, which is what early cutoff compares) whatever
  its memory layout: a string view's bytes say which buffer and offset holds its text, and
  those differ between a table computed whole, one put together from pieces (the Ray
  executor's blocks) and one read back, for the same values;
* a view (a row-selection artifact): a node whose output is a subset of the rows of its input,
  in the same order, with the same columns and types (a filter, a stage of filters, an
  operator's `select_rows`), is stored as the content of a BASE table plus the selected row
  indices. A view of a view is flattened: the base is always a table. Layout (little-endian):

      b"DCCVIEW1" | base content (32 ASCII hex) | base rows (u64) | selected rows (u64)
      | encoding (u8: 0 = u32 indices, 1 = u64 indices, 2 = bitmap of the base's rows)
      | payload

  The encoding is the smaller of the index list and the bitmap (indices on a tie), so the
  same selection over the same base always gives the same bytes;
* a patch: a node whose output is its input's rows (all, or a selection) with some columns
  replaced or added and every other column untouched (a row-wise rewrite such as
  rewrite.normalize, alone or fused with filters) is stored as a view of the BASE table plus
  the columns that are its own, so a rewrite of one text column does not copy the others:

      b"DCCPATCH" | base content | base rows | selected rows | encoding | payload  (as a view)
      | header length (u64) | header: JSON {"columns": output order, "own": own columns}
      | the own columns, as an Arrow IPC file written like a table (selected rows only)

  Own columns accumulate down a chain (a filter after a patch is a patch with the same own
  columns, re-stored for its rows), so the base is always a table.

Reading a view or patch verifies and maps its base and takes the rows; a missing or corrupt
base raises MissingObject/CorruptObject like a bad table, so the engine rebuilds. The store
knows only bytes (and the header both kinds share, to keep bases alive); this module knows
Arrow.

DCC_NO_VIEWS=1 turns writing views off (everything is materialized), for tests and comparison.
"""

from __future__ import annotations

import io
import json
import os
import struct
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dcc.cache.base import CorruptObject, MissingObject
from dcc.cache.store import PATCH_MAGIC, VIEW_MAGIC, DiskStore

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_TAIL = struct.Struct("<QQB")
_LEN = struct.Struct("<Q")
_U32, _U64, _BITMAP = 0, 1, 2


def views_enabled() -> bool:
    return os.environ.get("DCC_NO_VIEWS", "") in ("", "0")


@dataclass
class Derivation:
    """How a node's output was made from its one input's table: the input's rows `rows`
    (None: every row, in order) with the `written` columns replaced or added, every other
    column unchanged in values and type. Only an engine-run step can promise that (a filter,
    a plain Map's `with_columns`, an operator's `select_rows`)."""

    rows: np.ndarray | None
    written: tuple[str, ...] = ()


@dataclass
class Origin:
    """Where an in-memory table's rows live in the store: `base` (a table artifact), the
    selected rows of it (None: all of them, in order), and the columns that are not the
    base's (`own`: stored with the artifact itself). `base_schema` is the base's polars
    schema, to check that a column taken from the base has the type the table has."""

    base: str
    base_rows: int
    rows: np.ndarray | None = None
    own: frozenset[str] = frozenset()
    base_schema: dict[str, Any] | None = None

    def derive(self, step: Derivation) -> Origin:
        """The origin of a table made from this one by `step`."""
        rows = self.rows
        if step.rows is not None:
            rows = step.rows if rows is None else rows[step.rows]
        return Origin(self.base, self.base_rows, rows, self.own | set(step.written),
                      self.base_schema)

    def fits(self, df: pl.DataFrame) -> bool:
        """Whether `df` can be stored as a view or patch of the base: every column that is
        not its own is a base column of the same type, and at least one is."""
        if self.base_schema is None:
            return False
        shared = [c for c in df.columns if c not in self.own]
        return bool(shared) and all(self.base_schema.get(c) == df.schema[c] for c in shared)


def write_table(df: pl.DataFrame, store: DiskStore, expect: str | None = None) -> str:
    """Store a table as an immutable artifact; returns its content hash (which must be
    `expect` when given: see `table_content`)."""
    return store.put_object(lambda f: _write_ipc(df, f), ".arrow", expect)


class _Hasher(io.RawIOBase):
    """A sink that only hashes what is written to it."""

    def __init__(self) -> None:
        super().__init__()
        import xxhash

        self.hash = xxhash.xxh3_128()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.hash.update(view)
        return view.nbytes


def table_content(df: pl.DataFrame) -> tuple[str, Callable[[Any], None]]:
    """The content `write_table(df)` will store, computed without writing anything, and a
    function that writes exactly those bytes to a file (one pass of hashing over the
    canonical table's buffers, which pyarrow hands out uncopied)."""
    table = _canonical_arrow(df)

    def write(sink: Any) -> None:
        _write_arrow(table, sink)

    sink = _Hasher()
    write(sink)
    return str(sink.hash.hexdigest()), write


def _write_ipc(df: pl.DataFrame, sink: Any) -> None:
    """The one way a table becomes IPC bytes: its canonical Arrow form (`_canonical_arrow`)
    in one record batch, uncompressed, by pyarrow's writer (which writes only the bytes a
    sliced column uses)."""
    _write_arrow(_canonical_arrow(df), sink)


def _canonical_arrow(df: pl.DataFrame) -> Any:
    """`df` as one Arrow chunk with offset-based text and lists (polars' oldest compat level):
    its buffers then depend on the values only, never on how polars laid them out."""
    import polars as pl

    return df.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest()).combine_chunks()


def _write_arrow(table: Any, sink: Any) -> None:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with ipc.new_file(pa.PythonFile(sink, mode="w"), table.schema) as writer:
        writer.write_table(table)


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


def decode_view(data: bytes | memoryview) -> tuple[str, int, np.ndarray]:
    """(base, base rows, selected rows) of a view's bytes; CorruptObject if malformed."""
    base, base_rows, rows, end = _decode_rows(memoryview(data), VIEW_MAGIC)
    if end != len(data):
        raise CorruptObject("malformed view artifact (payload size)")
    return base, base_rows, rows


def _decode_rows(data: memoryview, magic: bytes) -> tuple[str, int, np.ndarray, int]:
    """The shared head of views and patches: (base, base rows, rows, end of the rows)."""
    import numpy as np

    head = len(magic) + 32
    try:
        base = bytes(data[len(magic):head]).decode("ascii")
        base_rows, n, enc = _TAIL.unpack_from(data, head)
    except (UnicodeDecodeError, struct.error) as e:
        raise CorruptObject(f"malformed view artifact: {e}") from None
    start = head + _TAIL.size
    size = {_BITMAP: (base_rows + 7) // 8, _U32: n * 4, _U64: n * 8}.get(enc)
    if size is None or start + size > len(data):
        raise CorruptObject("malformed view artifact (payload size)")
    payload = data[start:start + size]
    if enc == _BITMAP:
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=base_rows,
                             bitorder="little")
        rows = np.flatnonzero(bits)
    else:
        rows = np.frombuffer(payload, dtype="<u4" if enc == _U32 else "<u8").astype(np.int64)
    if len(rows) != n or (n and (rows[-1] >= base_rows or np.any(np.diff(rows) <= 0))):
        raise CorruptObject("malformed view artifact (row indices)")
    return base, base_rows, rows, start + size


def write_view(store: DiskStore, origin: Origin, df: pl.DataFrame | None = None) -> str:
    """Store a selection of a base table (a view), or with `origin.own` columns taken from
    `df` a patch; returns its content (the base's own content for every row in order and no
    own columns)."""
    if not origin.own and _every_row(origin):
        return origin.base
    return store.put_object(lambda f: f.write(view_bytes(origin, df)), ".view")


def _every_row(origin: Origin) -> bool:
    import numpy as np

    rows = origin.rows
    return rows is None or (len(rows) == origin.base_rows
                            and np.array_equal(rows, np.arange(origin.base_rows)))


def view_bytes(origin: Origin, df: pl.DataFrame | None = None) -> bytes:
    """The bytes of a view (no own columns) or a patch (own columns taken from `df`)."""
    import numpy as np

    rows = origin.rows if origin.rows is not None else np.arange(origin.base_rows)
    head = encode_view(origin.base, origin.base_rows, rows)
    if not origin.own:
        return head
    assert df is not None and df.height == len(rows)
    own = [c for c in df.columns if c in origin.own]
    header = json.dumps({"columns": df.columns, "own": own}, ensure_ascii=False).encode()
    buf = io.BytesIO()
    buf.write(PATCH_MAGIC + head[len(VIEW_MAGIC):] + _LEN.pack(len(header)) + header)
    _write_ipc(df.select(own), buf)
    return buf.getvalue()


def read_artifact(store: DiskStore, content: str,
                  verify: bool = True) -> tuple[pl.DataFrame, Origin]:
    """Load an artifact (a table, a view or a patch) and where its rows live; raises
    CorruptObject/MissingObject when it (or a view's base) cannot be trusted."""
    import pyarrow as pa

    path = store.open_object(content, verify=verify)
    with open(path, "rb") as f:
        magic = f.read(len(VIEW_MAGIC))
    if magic not in (VIEW_MAGIC, PATCH_MAGIC):
        df = _read_ipc(path)
        return df, Origin(content, df.height, base_schema=dict(df.schema))
    with pa.memory_map(str(path)) as mm:
        data = mm.read_buffer()
    base, base_rows, rows, end = _decode_rows(memoryview(data), magic)
    columns: list[str] | None = None
    own: list[str] = []
    if magic == VIEW_MAGIC and end != len(data):
        raise CorruptObject("malformed view artifact (payload size)")
    if magic == PATCH_MAGIC:
        columns, own, end = _patch_header(data, end)
    table = _read_base(store, content, base, base_rows, verify)
    shared = [c for c in (columns or table.columns) if c not in own]
    missing = [c for c in shared if c not in table.columns]
    if missing:
        raise CorruptObject(f"patch {content}: its base has no column {missing[0]!r}")
    every = len(rows) == base_rows  # strictly increasing and in range: every row, in order
    out = table.select(shared) if columns is not None else table
    out = out if every else take_rows(out, rows)
    if columns is not None:
        mine = _read_ipc_buffer(data.slice(end), content)
        if mine.columns != own or mine.height != len(rows):
            raise CorruptObject(f"patch {content}: its own columns do not match its header")
        out = out.hstack(mine.get_columns()).select(columns)
    return out, Origin(base, base_rows, rows, frozenset(own), dict(table.schema))


def check_rows(rows: Any, height: int, op: str) -> np.ndarray:
    """An operator's select_rows answer as int64 positions, or an error if it is not a
    strictly increasing list of rows of the input."""
    import numpy as np

    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise ValueError(f"{op}: select_rows() must return a 1-D array of row positions")
    rows = rows.astype(np.int64)
    if rows.size and (rows[0] < 0 or rows[-1] >= height or np.any(np.diff(rows) <= 0)):
        raise ValueError(f"{op}: select_rows() must return strictly increasing positions "
                         f"in [0, {height})")
    return rows


def take_rows(df: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The rows at strictly increasing positions `rows`, by a boolean mask: polars filters
    text columns by copying 16-byte views, while a gather copies the strings themselves
    (measured: 0.04 s against 0.5 s for 440k of 880k rows)."""
    import numpy as np
    import polars as pl

    mask = np.zeros(df.height, dtype=bool)
    mask[rows] = True
    return df.filter(pl.Series(mask))


def _patch_header(data: Any, end: int) -> tuple[list[str], list[str], int]:
    try:
        (size,) = _LEN.unpack_from(data, end)
        header = json.loads(bytes(data[end + _LEN.size:end + _LEN.size + size]))
        columns, own = list(header["columns"]), list(header["own"])
    except (struct.error, ValueError, KeyError, TypeError) as e:
        raise CorruptObject(f"malformed patch artifact header: {e}") from None
    return columns, own, end + _LEN.size + size


def _read_base(store: DiskStore, content: str, base: str, base_rows: int,
               verify: bool) -> pl.DataFrame:
    try:
        base_path = store.open_object(base, verify=verify)
    except MissingObject:
        raise MissingObject(f"the base table {base} of view {content} is missing; "
                            "the node will be rebuilt") from None
    with open(base_path, "rb") as f:
        if f.read(len(VIEW_MAGIC)) in (VIEW_MAGIC, PATCH_MAGIC):
            raise CorruptObject(f"view {content} names another view as its base")
    table = _read_ipc(base_path)
    if table.height != base_rows:
        raise CorruptObject(f"view {content}: its base has {table.height} rows, not {base_rows}")
    return table


def read_table(store: DiskStore, content: str, verify: bool = True) -> pl.DataFrame:
    """Load an artifact; raises CorruptObject/MissingObject when it cannot be trusted."""
    return read_artifact(store, content, verify)[0]


def _read_ipc(path: os.PathLike[str] | str) -> pl.DataFrame:
    import pyarrow as pa

    # Memory-mapped and zero-copy: objects are immutable, so the mapping stays valid, and
    # this is ~7x faster than polars' own read_ipc, which copies every buffer.
    with pa.memory_map(str(path)) as source:
        return _read_ipc_buffer(source.read_buffer(), os.path.basename(path))


def _read_ipc_buffer(buf: Any, name: str) -> pl.DataFrame:
    import polars as pl
    import pyarrow as pa
    import pyarrow.ipc as ipc

    try:
        table = ipc.open_file(buf).read_all()
    except pa.ArrowInvalid as e:
        raise CorruptObject(f"unreadable table artifact {name}: {e}") from None
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df


def schema_of(df: pl.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in df.schema.items()}
