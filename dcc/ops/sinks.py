"""Export writers: `export X to "path"`, the format chosen by the path's extension.

`.jsonl`, `.json`, `.parquet` and `.csv` write one file; any other path (no extension, or an
unknown one) is a folder in the layout of Hugging Face `Dataset.save_to_disk` (Arrow), which
`load.disk` and `datasets.load_from_disk` read back. Not an operator: the engine calls
`write_export` for each export.

Identical data gives identical bytes, in any process and however the rows arrive: every writer
takes batches (a table larger than memory is exported one batch at a time) and cuts row groups
and record batches at fixed row counts, nothing embeds a time, and the folder's
`_fingerprint` (random in `datasets`) is a hash of the Arrow file. Every write goes through
`dcc.cache.atomic` (a `.dcc-tmp-<pid>-...` name beside the destination, fsync, rename).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from dcc.cache.atomic import atomic_dir, atomic_file
from dcc.errors import DataError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

FORMATS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
HF_DATA_FILE = "data-00000-of-00001.arrow"
ARROW_BATCH_ROWS = 1000  # datasets' default writer batch size
PARQUET_ROW_GROUP = 100_000
HF_CANONICAL_ROWS = 100 * ARROW_BATCH_ROWS


def format_for(path: str | Path) -> str:
    """The export format of a path: "jsonl", "json", "parquet", "csv", or "arrow" (a folder).

    >>> format_for("out/train.jsonl"), format_for("out/train.PARQUET"), format_for("out/hf")
    ('jsonl', 'parquet', 'arrow')
    """
    return FORMATS.get(Path(path).suffix.lower(), "arrow")


def write_export(df: pl.DataFrame, path: Path) -> None:
    """Write `df` to `path` in the format its extension names, atomically."""
    write_export_batches(dict(df.schema), [df], path)


def write_export_batches(schema: dict[str, Any], batches: Iterable[pl.DataFrame],
                         path: Path) -> None:
    """Write the concatenation of `batches` (polars `schema`) to `path`, atomically, holding
    one batch (or one row group) at a time: a table larger than memory exports to any format.

    The bytes depend only on the rows, never on how they were cut into batches: JSON Lines,
    JSON and CSV are written row by row, Parquet row groups and Arrow record batches are cut
    at fixed row counts, so a streamed export equals one written from the whole table."""
    path = Path(path)
    fmt = format_for(path)
    if fmt == "arrow":
        _check_replaceable_dir(path)
        with atomic_dir(path) as tmp:
            _write_hf_dir(schema, batches, tmp)
        return
    writer = {"jsonl": _write_jsonl, "json": _write_json, "parquet": _write_parquet,
              "csv": _write_csv}[fmt]
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        writer(schema, batches, f)


def _write_jsonl(schema: dict[str, Any], batches: Iterable[pl.DataFrame], f: BinaryIO) -> None:
    """One JSON object per line, keys in column order, UTF-8 with non-ASCII kept, nulls as
    null (NaN and infinities too: JSON has no such numbers)."""
    for df in batches:
        if df.height:
            df.write_ndjson(f)


def _write_json(schema: dict[str, Any], batches: Iterable[pl.DataFrame], f: BinaryIO) -> None:
    """A JSON array with one object per line: "[\\n{...},\\n{...}\\n]\\n" ("[]\\n" if
    empty). A JSON Lines row holds no raw newline (JSON escapes them), so the rows of a batch
    are separated by turning its line ends into ",\\n"."""
    first = True
    for df in batches:
        if not df.height:
            continue
        f.write(b"[\n" if first else b",\n")
        f.write(df.write_ndjson().encode("utf-8")[:-1].replace(b"\n", b",\n"))
        first = False
    f.write(b"[]\n" if first else b"\n]\n")


def _write_parquet(schema: dict[str, Any], batches: Iterable[pl.DataFrame],
                   f: BinaryIO) -> None:
    """zstd level 3 with statistics, one row group per PARQUET_ROW_GROUP rows."""
    import pyarrow.parquet as pq

    arrow_schema = _arrow(_empty(schema)).schema
    with pq.ParquetWriter(f, arrow_schema, compression="zstd", compression_level=3,
                          write_statistics=True) as writer:
        for group in _rebatched(batches, PARQUET_ROW_GROUP):
            writer.write_table(_arrow(group), row_group_size=PARQUET_ROW_GROUP)


def _write_csv(schema: dict[str, Any], batches: Iterable[pl.DataFrame], f: BinaryIO) -> None:
    """A header row, then one line per row; nulls are empty fields; list and struct values are
    written as JSON text (CSV has no nested values)."""
    header = True
    for df in batches:
        if df.height:
            _csv_ready(df).write_csv(f, include_header=header)
            header = False
    if header:
        _csv_ready(_empty(schema)).write_csv(f)


def _empty(schema: dict[str, Any]) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(schema=schema)


def _arrow(df: pl.DataFrame) -> pa.Table:
    """Arrow with the oldest compatible types (large_string rather than string views), which
    every Parquet and `datasets` reader knows."""
    import polars as pl

    return df.to_arrow(compat_level=pl.CompatLevel.oldest())


def _rebatched(batches: Iterable[pl.DataFrame], rows: int) -> Iterator[pl.DataFrame]:
    """The rows of `batches`, cut into frames of exactly `rows` rows (the last one shorter):
    what a writer that cuts at fixed row counts needs to give the same bytes for any
    batching of the same rows."""
    import polars as pl

    held: list[pl.DataFrame] = []
    count = 0
    for df in batches:
        while df.height:
            take = min(rows - count, df.height)
            held.append(df.slice(0, take))
            count += take
            df = df.slice(take)
            if count == rows:
                yield pl.concat(held, rechunk=True)
                held, count = [], 0
    if count:
        yield pl.concat(held, rechunk=True)


def _csv_ready(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with its list and struct columns as JSON text."""
    import polars as pl

    nested = [c for c, t in df.schema.items() if t.is_nested()]
    if nested:
        df = df.with_columns(
            pl.when(pl.col(c).is_null()).then(None).otherwise(
                pl.struct(pl.col(c).alias("v")).struct.json_encode()
                .str.strip_prefix('{"v":').str.strip_suffix("}")).alias(c)
            for c in nested)
    return df


def _check_replaceable_dir(path: Path) -> None:
    """Only replace a folder that is a previous dataset export (or empty): an export must
    never wipe a folder of unrelated files."""
    if not path.exists():
        return
    if path.is_dir() and ((path / "state.json").is_file() or not any(path.iterdir())):
        return
    what = "a folder that is not a saved dataset" if path.is_dir() else "a file"
    raise DataError(f"{path}: export would replace {what}; a path without a file extension "
                    f"exports a dataset folder (choose another path or add .jsonl/.parquet)")


def _write_hf_dir(schema: dict[str, Any], batches: Iterable[pl.DataFrame],
                  folder: Path) -> None:
    """The files `Dataset.save_to_disk` writes for one shard, with a content fingerprint.
    Record batches of ARROW_BATCH_ROWS rows, canonicalized HF_CANONICAL_ROWS rows at a time
    (a multiple of the batch size, so the cuts fall where the whole table's would)."""
    import datasets
    import pyarrow as pa

    arrow_schema = _canonical(_arrow(_empty(schema))).schema
    features = datasets.Features.from_arrow_schema(arrow_schema)
    arrow_schema = arrow_schema.with_metadata(features.arrow_schema.metadata)
    data = folder / HF_DATA_FILE
    with pa.OSFile(str(data), "wb") as sink, pa.ipc.new_stream(sink, arrow_schema) as writer:
        for part in _rebatched(batches, HF_CANONICAL_ROWS):
            table = _canonical(_arrow(part)).replace_schema_metadata(arrow_schema.metadata)
            writer.write_table(table, max_chunksize=ARROW_BATCH_ROWS)
    state: dict[str, Any] = {
        "_data_files": [{"filename": HF_DATA_FILE}],
        "_fingerprint": _sha256(data)[:16],
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": None,
    }
    info = {"citation": "", "description": "", "features": features.to_dict(),
            "homepage": "", "license": ""}
    (folder / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True),
                                       encoding="utf-8")
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")


def _canonical(table: pa.Table) -> pa.Table:
    """The same table with canonical buffers. Arrow IPC copies buffers as they are, and polars
    leaves undefined bits past the end of validity bitmaps and undefined values under nulls,
    so equal tables could give different bytes. A Parquet round trip (which stores only valid
    values) rebuilds every buffer; combine_chunks makes the batch boundaries depend only on the
    row count."""
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none", use_dictionary=False, write_statistics=False,
                   row_group_size=max(table.num_rows, 1))
    buf.seek(0)
    return pq.read_table(buf).combine_chunks()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
