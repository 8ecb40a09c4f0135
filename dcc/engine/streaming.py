"""Tables larger than the build's memory budget, processed batch by batch.

A source file larger than the budget (`memory_budget()`: DCC_MEMORY_BUDGET, default a quarter
of physical memory) is not loaded: its reader's batches (`load_batches`) are written straight
into the store as a multi-batch Arrow IPC table, and the node's table stays on disk as a
`LazyTable`. A consumer that works row by row (a fused stage of filters and maps, a single
Filter or Map, an export in any format) reads such a table batch by batch and writes its
own output the same way: a view (row positions: 8 bytes a kept row while it runs) when it only
drops rows, else a table written batch by batch. A dataset operator that answers
`select_rows_streamed` (sampling; exact dedup, 16 bytes a row) is stored as a view too. Any
other consumer (near-duplicate dedup, a model operator, a combinator) loads the whole table, as
for a small one.

Nothing here maps a whole file: a mapping the size of the data counts against an address-space
limit as much as memory does. Stored bytes depend on the batch boundaries, which are fixed by
the reader (a fixed number of bytes or rows), so the same input gives the same content; it
differs from the content the in-memory path gives for the same rows, which costs at most a
rebuild when one machine streams a file that another loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dcc.cache.base import CorruptObject, MissingObject
from dcc.cache.store import PATCH_MAGIC, VIEW_MAGIC, DiskStore
from dcc.engine.artifacts import Origin, _decode_rows, _patch_header

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_DEFAULT_SHARE = 4  # of physical memory, when DCC_MEMORY_BUDGET is not set


def memory_budget() -> int:
    """Bytes of table data a build may hold in memory (DCC_MEMORY_BUDGET, e.g. "2G")."""
    from dcc.cache.gc import parse_size
    from dcc.errors import UsageError

    text = os.environ.get("DCC_MEMORY_BUDGET")
    if text:
        try:
            return parse_size(text)
        except ValueError as e:
            raise UsageError(f"DCC_MEMORY_BUDGET: {e}") from None
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // _DEFAULT_SHARE
    except (ValueError, OSError):
        return 4 << 30


@dataclass
class LazyTable:
    """A node's table that stays in the store: its content, rows, polars schema and where its
    rows live (for a view of it)."""

    content: str
    rows: int
    schema: dict[str, Any]
    origin: Origin


def write_batches(store: DiskStore, schema: dict[str, Any],
                  batches: Iterable[pl.DataFrame]) -> tuple[str, int]:
    """Store batches (each cast to `schema`) as one Arrow IPC table; (content, rows)."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.ipc as ipc

    rows = 0
    newest = pl.CompatLevel.newest()  # text as string views: no conversion either way

    def write(f: Any) -> None:
        nonlocal rows
        empty = pl.DataFrame(schema=schema).to_arrow(compat_level=newest)
        with ipc.new_file(pa.PythonFile(f, mode="w"), empty.schema) as writer:
            for df in batches:
                if dict(df.schema) != schema:
                    df = df.select([pl.col(c).cast(t) for c, t in schema.items()])
                rows += df.height
                # one record batch per batch given (a parsed chunk comes in many pieces)
                writer.write_table(df.rechunk().to_arrow(compat_level=newest))

    # pyarrow's default allocator (mimalloc) keeps what the writer allocated: 1.3 GB of
    # address space after writing 650 MB batch by batch, against 0.3 GB with malloc.
    old = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        return store.put_object(write, ".arrow"), rows
    finally:
        pa.set_memory_pool(old)


def read_batches(store: DiskStore, content: str,
                 verified: set[str] | None = None) -> Iterator[pl.DataFrame]:
    """A stored table, view or patch, a record batch of its base at a time. Each object is
    verified against its hash first, unless it is in `verified` (written or checked by this
    build already: a second pass over a large table read from disk costs seconds); the ones
    checked here are added to it."""
    import pyarrow as pa

    checked = verified if verified is not None else set()

    def open_checked(c: str) -> Any:
        path = store.open_object(c, verify=c not in checked)
        checked.add(c)
        return path

    import numpy as np

    path = open_checked(content)
    with open(path, "rb") as f:
        magic = f.read(len(VIEW_MAGIC))
    if magic not in (VIEW_MAGIC, PATCH_MAGIC):
        yield from _table_batches(path)
        return
    with pa.OSFile(str(path)) as f:
        data = f.read_buffer()
    base, base_rows, rows, end = _decode_rows(memoryview(data), magic)
    own: list[str] = []
    columns = None
    if magic == PATCH_MAGIC:
        columns, own, end = _patch_header(data, end)
    try:
        base_path = open_checked(base)
    except MissingObject:
        raise MissingObject(f"the base table {base} of view {content} is missing; "
                            "the node will be rebuilt") from None
    mine = _patch_rows(data.slice(end), content) if own else None
    offset = 0
    for df in _table_batches(base_path):
        lo, hi = np.searchsorted(rows, [offset, offset + df.height])
        if columns is not None:
            df = df.select([c for c in columns if c not in own])
        from dcc.engine.artifacts import take_rows

        part = take_rows(df, rows[lo:hi] - offset)
        if mine is not None and columns is not None:
            part = part.hstack(mine.take(int(hi - lo)).get_columns()).select(columns)
        offset += df.height
        yield part
    if offset != base_rows:
        raise CorruptObject(f"view {content}: its base has {offset} rows, not {base_rows}")


class _Rows:
    """Rows of a patch's own columns, handed out in order, in any counts."""

    def __init__(self, frames: Iterator[pl.DataFrame], empty: pl.DataFrame) -> None:
        self.frames = frames
        self.held = empty

    def take(self, n: int) -> pl.DataFrame:
        import polars as pl

        parts = [self.held.head(0)]
        while n > 0:
            if self.held.height == 0:
                self.held = next(self.frames)
            part = self.held.head(n)
            self.held = self.held.slice(part.height)
            parts.append(part)
            n -= part.height
        return pl.concat(parts)


def _patch_rows(buf: Any, content: str) -> _Rows:
    import polars as pl
    import pyarrow as pa
    import pyarrow.ipc as ipc

    try:
        reader = ipc.open_file(pa.BufferReader(buf))
    except pa.ArrowInvalid as e:
        raise CorruptObject(f"unreadable patch {content}: {e}") from None
    empty = pl.from_arrow(reader.schema.empty_table())
    assert isinstance(empty, pl.DataFrame)
    return _Rows(_frames(reader), empty)


def _table_batches(path: os.PathLike[str] | str) -> Iterator[pl.DataFrame]:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    try:
        reader = ipc.open_file(pa.BufferReader(_mapped(path)))
    except pa.ArrowInvalid as e:
        raise CorruptObject(f"unreadable table artifact {os.path.basename(path)}: {e}") \
            from None
    yield from _frames(reader)


def _mapped(path: os.PathLike[str] | str) -> Any:
    """A file as a zero-copy Arrow buffer over a read-only mapping, read ahead sequentially.

    Mapped, not read: batches are views of the page cache, which the kernel can drop under
    pressure (read into process memory, the allocator keeps what it got). Sequential advice
    matters for a file not in the page cache (written with O_DIRECT): faulted in page by page
    it reads ~6x slower on a VM. The buffer keeps the mapping alive."""
    import mmap

    import pyarrow as pa

    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return pa.py_buffer(b"")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_SEQUENTIAL)
    return pa.py_buffer(mm)


def _frames(reader: Any) -> Iterator[pl.DataFrame]:
    import polars as pl

    for i in range(reader.num_record_batches):
        df = pl.from_arrow(reader.get_batch(i))
        assert isinstance(df, pl.DataFrame)
        yield df


def source_size(op: Any) -> int:
    """Bytes of a source's files (0 when it cannot read batch by batch)."""
    if not hasattr(op, "load_batches"):
        return 0
    try:
        return sum(os.path.getsize(f) for f in op.files())
    except OSError:
        return 0  # missing: let the reader say so


def run_source(store: DiskStore, op: Any, ctx: Any, verified: set[str]) -> LazyTable:
    """Store a source's batches as its table, never holding more than one batch."""
    schema, batches = op.load_batches(ctx)
    content, rows = write_batches(store, schema, batches)
    verified.add(content)  # hashed as it was written
    return LazyTable(content, rows, schema, Origin(content, rows, base_schema=schema))


def run_rowwise(store: DiskStore, nodes: list[Any], source: LazyTable, views: bool,
                verified: set[str]) -> tuple[LazyTable, list[int]]:
    """Run a stage of filters and maps (or one such node) over a lazy table, batch by batch:
    stored as a view when it only drops rows, else as a table written batch by batch.
    Returns the output and each node's rows out."""
    import numpy as np
    import polars as pl

    from dcc.engine.artifacts import Derivation, write_view
    from dcc.engine.stages import run_stage, written_columns

    casts = [c for n in nodes for c in n.op.null_text_casts(pl.Schema(source.schema))]
    schema = dict(run_stage(nodes, pl.DataFrame(schema=source.schema))[0].schema)
    counts = [0] * len(nodes)
    pure = views and not casts and written_columns(nodes, []) == ()
    kept: list[np.ndarray] = []

    def outputs() -> Iterator[pl.DataFrame]:
        offset = 0
        for df in read_batches(store, source.content, verified):
            out, n, derivation = run_stage(nodes, df, with_rows=pure)
            for i, k in enumerate(n):
                counts[i] += k
            if pure:
                assert derivation is not None and derivation.rows is not None
                kept.append(derivation.rows + offset)
            offset += df.height
            yield out

    if pure:
        for _ in outputs():
            pass
        rows = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
        origin = source.origin.derive(Derivation(rows))
        content = write_view(store, origin)
        return LazyTable(content, len(rows), schema, origin), counts
    content, n_rows = write_batches(store, schema, outputs())
    verified.add(content)
    return LazyTable(content, n_rows, schema, Origin(content, n_rows, base_schema=schema)), counts


def run_selection(store: DiskStore, op: Any, source: LazyTable, ctx: Any,
                  verified: set[str]) -> LazyTable:
    """Run a dataset operator that keeps a subset of its rows (`select_rows_streamed`) over a
    lazy table: stored as a view of the rows it keeps."""
    from dcc.engine.artifacts import Derivation, check_rows, write_view

    rows = op.select_rows_streamed(lambda: read_batches(store, source.content, verified),
                                   source.rows, ctx)
    rows = check_rows(rows, source.rows, op.name)
    origin = source.origin.derive(Derivation(rows))
    content = write_view(store, origin)
    return LazyTable(content, len(rows), source.schema, origin)


def stored_lazy(store: DiskStore, content: str, rows: int, budget: int) -> LazyTable | None:
    """A stored table or view to read batch by batch, when its (base) table is larger than
    `budget`; None when it is small or a patch (those are loaded whole)."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from dcc.engine.artifacts import decode_view

    try:
        path = store.object_path(content)
        base = store.view_base(content)
        base_path = store.object_path(base) if base else path
        if base_path.stat().st_size <= budget:
            return None
        with open(path, "rb") as f:
            head = f.read(len(VIEW_MAGIC))
        if head == PATCH_MAGIC:
            return None
        with pa.OSFile(str(base_path)) as f:
            arrow = ipc.open_file(f).schema
        empty = pl.from_arrow(arrow.empty_table())
        assert isinstance(empty, pl.DataFrame)
        schema = dict(empty.schema)
        if base is None:
            return LazyTable(content, rows, schema, Origin(content, rows, base_schema=schema))
        base_content, base_rows, sel = decode_view(path.read_bytes())
        return LazyTable(content, rows, schema,
                         Origin(base_content, base_rows, sel, base_schema=schema))
    except (OSError, ValueError, pa.ArrowInvalid, CorruptObject):
        return None  # unreadable: the whole-table path reports and rebuilds it


__all__ = ["LazyTable", "memory_budget", "read_batches", "run_rowwise", "run_selection",
           "run_source", "source_size", "stored_lazy", "write_batches"]
