"""Export writers: `export X to "path"`, the format chosen by the path's extension.

`.jsonl`, `.json`, `.parquet` and `.csv` write one file; any other path (no extension, or an
unknown one) is a folder in the layout of Hugging Face `Dataset.save_to_disk` (Arrow), which
`load.disk` and `datasets.load_from_disk` read back. Not an operator: the engine calls
`write_export` for each export.

Identical data gives identical bytes, in any process: every writer works on a rechunked
frame with fixed batch and row-group sizes, nothing embeds a time, and the folder's
`_fingerprint` (random in `datasets`) is a hash of the Arrow file. Every write goes through
`dcc.cache.atomic` (a `.dcc-tmp-<pid>-...` name beside the destination, fsync, rename).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcc.cache.atomic import atomic_dir, atomic_file
from dcc.errors import DataError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

FORMATS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
HF_DATA_FILE = "data-00000-of-00001.arrow"
ARROW_BATCH_ROWS = 1000  # datasets' default writer batch size
PARQUET_ROW_GROUP = 100_000


def format_for(path: str | Path) -> str:
    """The export format of a path: "jsonl", "json", "parquet", "csv", or "arrow" (a folder).

    >>> format_for("out/train.jsonl"), format_for("out/train.PARQUET"), format_for("out/hf")
    ('jsonl', 'parquet', 'arrow')
    """
    return FORMATS.get(Path(path).suffix.lower(), "arrow")


def write_export(df: pl.DataFrame, path: Path) -> None:
    """Write `df` to `path` in the format its extension names, atomically."""
    path = Path(path)
    fmt = format_for(path)
    df = df.rechunk()
    if fmt == "arrow":
        _check_replaceable_dir(path)
        with atomic_dir(path) as tmp:
            _write_hf_dir(df, tmp)
        return
    with atomic_file(path) as tmp:
        {"jsonl": _write_jsonl, "json": _write_json, "parquet": _write_parquet,
         "csv": _write_csv}[fmt](df, tmp)


STREAMED = ("jsonl", "csv")  # formats write_export_batches writes without the whole table


def write_export_batches(schema: dict[str, Any], batches: Iterable[pl.DataFrame],
                         path: Path) -> None:
    """Write batches (of a table too large to hold) to `path` as write_export would write
    their concatenation: the same bytes, atomically. Only for .jsonl and .csv paths."""
    import polars as pl

    path = Path(path)
    fmt = format_for(path)
    if fmt not in STREAMED:
        raise ValueError(f"{path}: {fmt} exports are written from a whole table")
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        first = True
        for df in batches:
            if not df.height:
                continue
            if fmt == "jsonl":
                df.write_ndjson(f)
            else:
                _csv_ready(df).write_csv(f, include_header=first)
            first = False
        if first and fmt == "csv":
            _csv_ready(pl.DataFrame(schema=schema)).write_csv(f)


def _write_jsonl(df: pl.DataFrame, path: Path) -> None:
    """One JSON object per line, keys in column order, UTF-8 with non-ASCII kept, nulls as
    null (NaN and infinities too: JSON has no such numbers)."""
    df.write_ndjson(path)


def _write_json(df: pl.DataFrame, path: Path) -> None:
    """A JSON array with one object per line: "[\\n{...},\\n{...}\\n]\\n" ("[]\\n" if empty)."""
    rows = df.write_ndjson().splitlines() if df.height else []
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n")


def _write_parquet(df: pl.DataFrame, path: Path) -> None:
    df.write_parquet(path, compression="zstd", compression_level=3, statistics=True,
                     row_group_size=PARQUET_ROW_GROUP)


def _write_csv(df: pl.DataFrame, path: Path) -> None:
    """A header row, then one line per row; nulls are empty fields; list and struct values are
    written as JSON text (CSV has no nested values)."""
    _csv_ready(df).write_csv(path)


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


def _write_hf_dir(df: pl.DataFrame, folder: Path) -> None:
    """The files `Dataset.save_to_disk` writes for one shard, with a content fingerprint."""
    import datasets
    import polars as pl
    import pyarrow as pa

    table = _canonical(df.to_arrow(compat_level=pl.CompatLevel.oldest()))
    features = datasets.Features.from_arrow_schema(table.schema)
    table = table.replace_schema_metadata(features.arrow_schema.metadata)
    data = folder / HF_DATA_FILE
    with pa.OSFile(str(data), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
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
