"""Reading a source batch by batch, for files larger than the memory the build may use.

`load.jsonl` and `load.parquet` read a whole file into one table when it fits; when the engine
decides a file is too large (`dcc.engine.streaming`), it asks them for batches instead, and
these functions produce them without ever holding the whole file (nor mapping it: a mapping
the size of the file counts against a process's address-space limit).

The batches concatenated equal what the whole-file reader gives: the same rows in order, the
same columns and types. JSON Lines needs two passes for that: the first infers each chunk's
schema and merges them (int and float give float, scalars of different kinds give str, as
the whole-file inference does), the second parses every chunk with the merged schema. Errors
are those of the whole-file reader: a bad line is named by file and line; with
on_error="skip" bad lines are dropped and counted.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dcc.errors import DataError

if TYPE_CHECKING:
    import polars as pl

# Bytes of JSON Lines parsed at a time (cut at a line end). Fixed, so the same file always
# gives the same batches (and so the same stored bytes).
JSONL_CHUNK = 4 << 20
PARQUET_BATCH_ROWS = 65_536


def jsonl_chunks(path: str) -> Iterator[tuple[int, bytes]]:
    """(byte offset in the file, whole lines of about JSONL_CHUNK bytes). Line numbers are
    counted only when an error needs one (`_line_at`): counting every chunk's costs more
    than a tenth of reading it."""
    offset = 0
    rest = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(JSONL_CHUNK)
            if not block:
                break
            data = rest + block if rest else block
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a chunk: keep reading
                rest = data
                continue
            yield offset, data[:cut] if cut < len(data) else data
            offset += cut
            rest = data[cut:]
    if rest:
        yield offset, rest


def _line_at(path: str, offset: int) -> int:
    """The 1-based number of the line that starts at byte `offset`."""
    lines = 1
    with open(path, "rb") as f:
        while offset > 0:
            block = f.read(min(offset, 1 << 20))
            if not block:
                break
            lines += block.count(b"\n")
            offset -= len(block)
    return lines


def _blank(data: bytes) -> bool:
    return not data or data.isspace()


def jsonl_batches(path: str, on_error: str, stats: dict[str, Any]
                  ) -> tuple[dict[str, Any], Iterator[pl.DataFrame]]:
    """The file's merged schema (first pass, done here: schema inference only, ~half the
    cost of parsing) and its rows chunk by chunk with that schema (second pass, as the
    iterator is consumed; with on_error="skip" it counts the skipped lines in `stats`)."""
    import polars as pl

    schema: dict[str, Any] = {}
    seen = False
    for offset, data in jsonl_chunks(path):
        try:
            found = {} if _blank(data) else dict(
                pl.scan_ndjson(io.BytesIO(data), infer_schema_length=None).collect_schema())
        except pl.exceptions.PolarsError:  # a bad line: the careful path names or skips it
            found = dict(_parse(path, offset, data, on_error, None)[0].schema)
        schema = _merge(path, offset, data, schema if seen else None, found)
        seen = True
    return schema, _second_pass(path, on_error, schema, stats)


def _second_pass(path: str, on_error: str, schema: dict[str, Any],
                 stats: dict[str, Any]) -> Iterator[pl.DataFrame]:
    skipped = 0
    for offset, data in jsonl_chunks(path):
        df, bad = _parse(path, offset, data, on_error, schema)
        skipped += bad
        if df.height:
            yield df
    if on_error == "skip":
        stats["skipped_lines"] = skipped


def _parse(path: str, offset: int, data: bytes, on_error: str,
           schema: dict[str, Any] | None) -> tuple[pl.DataFrame, int]:
    """One chunk (at byte `offset`) as a table, and how many bad lines it skipped. A chunk
    polars cannot read is checked line by line, as the whole-file reader's slow path does."""
    import polars as pl

    try:
        return _read(data, schema), 0
    except pl.exceptions.PolarsError:
        pass
    from dcc.ops.sources import _bad_line, _first_conflict

    first = _line_at(path, offset)
    good: list[tuple[int, bytes]] = []
    skipped = 0
    for n, raw in enumerate(data.splitlines(keepends=True), first):
        if not raw.strip():
            continue
        reason = _bad_line(raw)
        if reason is None:
            good.append((n, raw.rstrip(b"\r\n")))
        elif on_error == "raise":
            raise DataError(f"{path}:{n}: {reason}")
        else:
            skipped += 1
    if schema is None:
        conflict = _first_conflict(path, good)
        if conflict is not None:
            raise conflict
    try:
        return _read(b"\n".join(raw for _, raw in good), schema), skipped
    except pl.exceptions.PolarsError as exc:
        line = _first_misfit(good, schema)
        raise DataError(f"{path}:{line}: this row's types do not fit the rows above it "
                        f"({str(exc).splitlines()[0]})") from None


def _read(data: bytes, schema: dict[str, Any] | None) -> pl.DataFrame:
    import polars as pl

    if _blank(data):
        return pl.DataFrame(schema=schema)
    if schema is None:
        return pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    return pl.read_ndjson(io.BytesIO(data), schema=schema)


def _first_misfit(lines: list[tuple[int, bytes]], schema: dict[str, Any] | None) -> int:
    """The first line that the schema cannot read (bisection over prefixes)."""
    import polars as pl

    def fails(k: int) -> bool:
        try:
            _read(b"\n".join(raw for _, raw in lines[:k]), schema)
        except pl.exceptions.PolarsError:
            return True
        return False

    lo, hi = 1, len(lines)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fails(mid) else (mid + 1, hi)
    return lines[lo - 1][0] if lines else 0


def _merge(path: str, offset: int, data: bytes, schema: dict[str, Any] | None,
           new: dict[str, Any]) -> dict[str, Any]:
    """The schema of the rows so far and a new chunk's rows: the union of the columns in
    first-seen order, each with the supertype polars' own inference would give."""
    import polars as pl

    if schema is None:
        return new
    try:
        both = pl.concat([pl.DataFrame(schema=schema), pl.DataFrame(schema=new)],
                         how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        lines = [(n, raw.rstrip(b"\r\n")) for n, raw in
                 enumerate(data.splitlines(keepends=True), _line_at(path, offset))
                 if raw.strip()]
        line = _first_misfit(lines, schema)
        raise DataError(f"{path}:{line}: this row's types do not fit the rows above it "
                        f"({str(exc).splitlines()[0]})") from None
    return dict(both.schema)


def parquet_batches(path: str, columns: list[str] | None
                    ) -> tuple[dict[str, Any], Iterator[pl.DataFrame]]:
    """The schema `pl.read_parquet` gives and the file's rows, a fixed number at a time,
    typed that way."""
    import polars as pl

    schema = dict(pl.read_parquet_schema(path))
    if columns is not None:
        schema = {c: schema[c] for c in columns}
    return schema, _parquet_rows(path, columns, schema)


def _parquet_rows(path: str, columns: list[str] | None,
                  schema: dict[str, Any]) -> Iterator[pl.DataFrame]:
    import polars as pl
    import pyarrow.parquet as pq

    with pq.ParquetFile(path, memory_map=False) as f:
        for batch in f.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns,
                                    use_threads=False):
            df = pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            yield df.select([pl.col(c).cast(t) for c, t in schema.items()])
