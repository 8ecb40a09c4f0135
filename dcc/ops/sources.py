"""Sources: `load.jsonl|json|parquet|csv|disk|hf` read a dataset from files.

A source is keyed by the *content* of `files()`, so each one lists every file whose bytes
define its rows (for a folder: all files under it, sorted). `infer_schema()` is what the
compiler sees before any build; it reads at most the first 100 rows and raises `DataError`
for a missing file, which the compiler turns into a diagnostic at the path string.

Row types in schemas are the recipe-level names "str", "int", "float", "bool", "list",
"struct", "null" and "any". polars, pyarrow and datasets are imported inside methods only.

Why this module is longer than ~400 lines: each fast reader (polars, pyarrow) has a slow path
that runs only when it fails and exists to name the bad file *and line* (JSONL line checks,
an incremental JSON-array reader, a CSV field counter). When a format grows further, split
into a `dcc/ops/sources/` folder with one module per format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcc.errors import DataError
from dcc.ops import register
from dcc.ops.base import P, RunContext, Source
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

INFER_ROWS = 100
_PATH_DOC = "file to read; relative to the folder of the recipe that names it"


# -- helpers shared by the sources ------------------------------------------------------------
def _require_file(path: str) -> None:
    if not os.path.isfile(path):
        what = "is a directory, not a file" if os.path.isdir(path) else "no such file"
        raise DataError(f"{path}: {what}")


def _require_dir(path: str) -> None:
    if not os.path.isdir(path):
        what = "is a file, not a folder" if os.path.exists(path) else "no such folder"
        raise DataError(f"{path}: {what}")


def _dir_files(path: str) -> list[str]:
    """Every file under `path`, sorted by relative path (the content that defines the data)."""
    root = Path(path)
    return [str(p) for p in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix())
            if p.is_file()]


def _value_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "struct"}.get(
        type(value), "any")


def _merge(a: str, b: str) -> str:
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    return "float" if {a, b} == {"int", "float"} else "any"


def _schema_of_rows(rows: list[dict[str, Any]]) -> Schema:
    """The closed schema of JSON rows: columns in first-seen order, types merged."""
    cols: dict[str, str] = {}
    for row in rows:
        for key, value in row.items():
            t = _value_type(value)
            cols[key] = _merge(cols[key], t) if key in cols else t
    return Schema(cols)


def _arrow_type(t: pa.DataType) -> str:
    import pyarrow as pa

    checks = ((pa.types.is_null, "null"), (pa.types.is_boolean, "bool"),
              (pa.types.is_integer, "int"), (pa.types.is_floating, "float"),
              (pa.types.is_struct, "struct"))
    for check, name in checks:
        if check(t):
            return name
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "str"
    if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
            or pa.types.is_list_view(t) or pa.types.is_large_list_view(t)):
        return "list"
    return "any"


def _schema_of_arrow(schema: pa.Schema) -> Schema:
    return Schema({f.name: _arrow_type(f.type) for f in schema})


def _from_arrow(table: pa.Table) -> pl.DataFrame:
    import polars as pl

    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _bad_line(raw: bytes) -> str | None:
    """Why one JSONL line is not a JSON object, or None when it is one."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 (byte {exc.start + 1} of the line)"
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return f"invalid JSON ({exc.msg} at column {exc.colno})"
    except ValueError as exc:
        return f"invalid JSON ({exc})"
    if not isinstance(value, dict):
        return f"a row must be a JSON object (got {_value_type(value)})"
    return None


def _read_ndjson(data: bytes) -> pl.DataFrame:
    import io

    import polars as pl

    if not data.strip():
        return pl.DataFrame()
    return pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)


def _first_conflict(path: str, lines: list[tuple[int, bytes]]) -> DataError | None:
    """Rows that are each valid but do not fit together (a struct here, a list there): find the
    first line whose prefix polars cannot read, by bisection. None when all lines read."""
    import polars as pl

    def error(k: int) -> Exception | None:
        try:
            _read_ndjson(b"\n".join(raw for _, raw in lines[:k]))
        except pl.exceptions.PolarsError as exc:
            return exc
        return None

    last = error(len(lines))
    if last is None:
        return None
    lo, hi = 1, len(lines)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if error(mid) else (mid + 1, hi)
    reason = str(error(lo) or last).splitlines()[0]
    return DataError(f"{path}:{lines[lo - 1][0]}: this row's types do not fit the rows above "
                     f"it ({reason})")


# -- load.jsonl -------------------------------------------------------------------------------
@register
class LoadJsonl(Source):
    """Read a JSON Lines file: one JSON object per line, UTF-8.

    Blank lines (only spaces, tabs or CR) are ignored. Every other line must be a JSON object;
    a line with invalid JSON (NaN and Infinity included), invalid UTF-8, or a value that is not
    an object (a list, a string, null) is a bad line. With on_error="raise" (the default) the
    first bad line stops the build with "PATH:LINE: invalid JSON (...)" (LINE is 1-based and
    counts blank lines); with on_error="skip" bad lines are dropped and their number is
    reported as the `skipped_lines` statistic.

    Columns are the union of the keys of all rows, in first-seen order; a row without a key
    gets null there. Column types are inferred from the whole file: int and float mix to
    float; scalars of different kinds (int and str) become str; values that cannot be combined
    (an object in one row, a list in another) are an error naming the first such line, in
    both modes. An empty file gives an empty dataset with no columns.

    At compile time the schema comes from the first 100 non-blank lines.

    Example:  raw = load.jsonl("data/alpaca.jsonl", on_error="skip")
    """

    name = "load.jsonl"
    version = 1
    params = (
        P("path", "str", doc=_PATH_DOC, path=True, positional=True),
        P("on_error", "str", "raise", doc="what a bad line does: stop the build or be skipped",
          choices=("raise", "skip")),
    )

    def infer_schema(self) -> Schema:
        path = self.p["path"]
        _require_file(path)
        rows: list[dict[str, Any]] = []
        seen = 0
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                seen += 1
                if seen > INFER_ROWS:
                    break
                reason = _bad_line(raw)
                if reason is None:
                    rows.append(json.loads(raw))
                elif self.p["on_error"] == "raise":
                    raise DataError(f"{path}:{lineno}: {reason}")
        return _schema_of_rows(rows)

    def load(self, ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        path = self.p["path"]
        _require_file(path)
        try:
            df = pl.read_ndjson(path, infer_schema_length=None)
        except pl.exceptions.PolarsError:
            df = self._careful_load(path, ctx)
        else:
            if self.p["on_error"] == "skip":
                ctx.stats["skipped_lines"] = 0
        return df

    def load_batches(self, ctx: RunContext) -> tuple[dict[str, Any], Iterator[pl.DataFrame]]:
        """The schema and rows of load(), batch by batch, for a file larger than the build's
        memory budget (two passes over the file; dcc.ops.readers)."""
        from dcc.ops.readers import jsonl_batches

        _require_file(self.p["path"])
        return jsonl_batches(self.p["path"], self.p["on_error"], ctx.stats)

    def head(self, n: int) -> pl.DataFrame | None:
        lines: list[bytes] = []
        with open(self.p["path"], "rb") as f:
            for raw in f:
                if raw.strip() and _bad_line(raw) is None:
                    lines.append(raw.rstrip(b"\r\n"))
                    if len(lines) >= n:
                        break
        return _read_ndjson(b"\n".join(lines)) if lines else None

    def _careful_load(self, path: str, ctx: RunContext) -> pl.DataFrame:
        """The slow path, taken only when polars cannot read the file: check line by line."""
        good: list[tuple[int, bytes]] = []
        skipped = 0
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                reason = _bad_line(raw)
                if reason is None:
                    good.append((lineno, raw.rstrip(b"\r\n")))
                elif self.p["on_error"] == "raise":
                    raise DataError(f"{path}:{lineno}: {reason}")
                else:
                    skipped += 1
        conflict = _first_conflict(path, good)
        if conflict is not None:
            raise conflict
        if self.p["on_error"] == "skip":
            ctx.stats["skipped_lines"] = skipped
        return _read_ndjson(b"\n".join(raw for _, raw in good))


# -- load.json --------------------------------------------------------------------------------
def _utf8_error(path: str) -> DataError:
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return DataError(f"{path}:{line}: invalid UTF-8")
    return DataError(f"{path}: invalid UTF-8")


class _Reader:
    """A window on a text file: `buf` from `pos` on, refilled in chunks of at least 1 MiB,
    with the 1-based line number of `pos` kept up to date without rescanning."""

    def __init__(self, f: Any, path: str) -> None:
        self.f, self.path = f, path
        self.buf, self.pos, self.eof = "", 0, False
        self.mark, self.mark_line = 0, 1  # buf[mark] is on line mark_line

    def more(self) -> bool:
        """Read another chunk, dropping the consumed part of the buffer; False at the end."""
        if self.eof:
            return False
        try:
            # Grow geometrically: an element (or an error) far from `pos` costs O(n), not O(n^2).
            chunk = self.f.read(max(1 << 20, len(self.buf) - self.pos))
        except UnicodeDecodeError:
            raise _utf8_error(self.path) from None
        if not chunk:
            self.eof = True
            return False
        self.line(self.pos)
        self.mark -= self.pos
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        return True

    def skip_ws(self) -> str:
        """Skip whitespace; return the next character ("" at the end of the file)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos:self.pos + 1]

    def line(self, pos: int | None = None) -> int:
        pos = self.pos if pos is None else pos
        if pos < self.mark:
            return self.mark_line - self.buf.count("\n", pos, self.mark)
        self.mark_line += self.buf.count("\n", self.mark, pos)
        self.mark = pos
        return self.mark_line

    def error(self, what: str, pos: int | None = None) -> DataError:
        return DataError(f"{self.path}:{self.line(pos)}: {what}")


def _iter_json_array(path: str, limit: int | None = None) -> Iterator[tuple[int, Any]]:
    """Yield (line, element) from a file holding one JSON array of objects, decoding only as
    far as needed (at most `limit` elements) and never holding more than the current element."""
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    with open(path, encoding="utf-8") as f:
        r = _Reader(f, path)
        if r.skip_ws() != "[":
            raise r.error("expected a JSON array of objects")
        r.pos += 1
        if r.skip_ws() == "]":
            return
        count = 0
        while limit is None or count < limit:
            while True:
                try:
                    value, end = decoder.raw_decode(r.buf, r.pos)
                    break
                except json.JSONDecodeError as exc:
                    if not r.more():
                        raise r.error(f"invalid JSON ({exc.msg})", exc.pos) from None
                except ValueError as exc:
                    raise r.error(f"invalid JSON ({exc})") from None
            if not isinstance(value, dict):
                raise r.error(f"element {count + 1} of the array must be a JSON object "
                              f"(got {_value_type(value)})")
            yield r.line(), value
            count += 1
            r.pos = end
            sep = r.skip_ws()
            if sep == "]":
                return
            if sep != ",":
                raise r.error(f"invalid JSON (expected ',' or ']' after element {count})")
            r.pos += 1
            r.skip_ws()


@register
class LoadJson(Source):
    """Read a file holding one JSON array of objects (the alpaca_data.json layout), UTF-8.

    Anything else (a top-level object, an element that is not an object, invalid JSON, NaN)
    is an error naming the file and the 1-based line. Columns and types follow load.jsonl:
    the union of keys in first-seen order, missing keys null, int and float mix to float,
    scalars of different kinds become str. `[]` gives an empty dataset with no columns.
    At compile time the schema comes from the first 100 elements.

    Example:  raw = load.json("data/alpaca_data.json")
    """

    name = "load.json"
    version = 1
    params = (P("path", "str", doc=_PATH_DOC, path=True, positional=True),)

    def infer_schema(self) -> Schema:
        _require_file(self.p["path"])
        return _schema_of_rows([row for _, row in _iter_json_array(self.p["path"], INFER_ROWS)])

    def load(self, ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        path = self.p["path"]
        _require_file(path)
        try:
            with open(path, "rb") as f:
                head = f.read(64).lstrip()
            if not head.startswith(b"["):
                raise pl.exceptions.ComputeError("not an array")
            return pl.read_json(path, infer_schema_length=None)
        except (pl.exceptions.PolarsError, UnicodeDecodeError):
            # Slow path: find the first problem and name its line.
            lines = [(n, json.dumps(row).encode()) for n, row in _iter_json_array(path)]
            conflict = _first_conflict(path, lines)
            if conflict is not None:
                raise conflict from None
            return _read_ndjson(b"\n".join(raw for _, raw in lines))


# -- load.parquet -----------------------------------------------------------------------------
@register
class LoadParquet(Source):
    """Read a Parquet file, all columns or the listed ones (in the listed order).

    Types come from the file's schema (nothing is inferred); a listed column the file lacks is
    an error. At compile time only the file's footer is read.

    Example:  raw = load.parquet("data/train.parquet", columns=["instruction", "output"])
    """

    name = "load.parquet"
    version = 1
    params = (
        P("path", "str", doc=_PATH_DOC, path=True, positional=True),
        P("columns", "list[str]", None, doc="columns to read (null: all)"),
    )

    def _file_schema(self) -> pa.Schema:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.p["path"]
        _require_file(path)
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        for col in self.p["columns"] or []:
            if col not in schema.names:
                raise DataError(f"{path}: no column '{col}' (it has: {', '.join(schema.names)})")
        return schema

    def infer_schema(self) -> Schema:
        full = _schema_of_arrow(self._file_schema())
        cols = self.p["columns"]
        return full if cols is None else Schema({c: full.columns[c] for c in cols})

    def load(self, ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        self._file_schema()
        try:
            return pl.read_parquet(self.p["path"], columns=self.p["columns"])
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"{self.p['path']}: cannot read Parquet ({exc})") from None

    def load_batches(self, ctx: RunContext) -> tuple[dict[str, Any], Iterator[pl.DataFrame]]:
        """The schema and rows of load(), a row group's worth at a time, for a file larger
        than the build's memory budget (dcc.ops.readers)."""
        import pyarrow as pa

        from dcc.ops.readers import parquet_batches

        self._file_schema()
        schema, batches = parquet_batches(self.p["path"], self.p["columns"])

        def checked() -> Iterator[pl.DataFrame]:
            try:
                yield from batches
            except (pa.ArrowException, OSError) as exc:
                raise DataError(f"{self.p['path']}: cannot read Parquet ({exc})") from None

        return schema, checked()


# -- load.csv ---------------------------------------------------------------------------------
_INT = r"^-?(0|[1-9][0-9]*)$"
_FLOAT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


def _typed_csv(df: pl.DataFrame) -> pl.DataFrame:
    """Give a column a type only where every non-empty value says so unambiguously."""
    import polars as pl

    exprs = []
    for name in df.columns:
        s = df.get_column(name)
        vals = s.filter(s != "")
        col = pl.col(name).replace("", None)
        if vals.len() == 0:
            continue
        if vals.str.contains(_INT).all():
            if vals.cast(pl.Int64, strict=False).null_count() == 0:  # else too big: str
                exprs.append(col.cast(pl.Int64))
        elif vals.str.contains(_FLOAT).all():
            exprs.append(col.cast(pl.Float64))
        elif vals.is_in(["true", "false"]).all():
            exprs.append(col == "true")
    return df.with_columns(exprs) if exprs else df


@register
class LoadCsv(Source):
    """Read a CSV file whose first row names the columns (RFC 4180 quoting with '"').

    Values are strings, except a column whose every non-empty value has one unambiguous
    reading: all canonical integers (optional '-', no '+', no leading zeros, fitting in 64
    bits: "42", "-7", not "007") give an int column; all decimal numbers ("3.5", "1e-3",
    "42"; no leading zeros) a float column; all exactly "true"/"false" a bool column. In a
    typed column an empty field is null; in a string column it is the empty string (CSV cannot
    tell the two apart). A column with no non-empty value is str. Types are decided over the
    whole file; at compile time over the first 100 rows, so a column that turns non-numeric
    later is str at run time though the compiler saw a number. A row with the wrong number of
    fields is an error naming its line. An empty file gives an empty dataset.

    Example:  raw = load.csv("data/prompts.tsv", delimiter="\\t")
    """

    name = "load.csv"
    version = 1
    params = (
        P("path", "str", doc=_PATH_DOC, path=True, positional=True),
        P("delimiter", "str", ",", doc="the one character between fields"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        d = self.p["delimiter"]
        if len(d.encode("utf-8")) != 1 or d in "\"\r\n":
            message = (f"'delimiter' must be one ASCII character other than a quote or "
                       f"newline (got {d!r})")
            return [("delimiter", message)]
        return []

    def _read(self, n_rows: int | None) -> pl.DataFrame:
        """All fields as strings (pyarrow's reader: it rejects short and long rows)."""
        import csv

        import polars as pl
        import pyarrow as pa
        import pyarrow.csv as pv

        path, delim = self.p["path"], self.p["delimiter"]
        _require_file(path)
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            header = next(csv.reader(f, delimiter=delim), None)
        if not header:
            return pl.DataFrame()
        parse = pv.ParseOptions(delimiter=delim, newlines_in_values=True)
        convert = pv.ConvertOptions(column_types={n: pa.string() for n in header},
                                    strings_can_be_null=False, quoted_strings_can_be_null=False)
        try:
            if n_rows is None:
                table = pv.read_csv(path, parse_options=parse, convert_options=convert)
            else:
                table = self._head(pv.open_csv(path, parse_options=parse,
                                               convert_options=convert), n_rows)
            return _typed_csv(_from_arrow(table))
        except (pa.ArrowInvalid, pl.exceptions.PolarsError) as exc:
            raise self._locate(str(exc)) from None

    @staticmethod
    def _head(reader: Any, n_rows: int) -> pa.Table:
        import pyarrow as pa

        batches, rows = [], 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows >= n_rows:
                break
        return pa.Table.from_batches(batches, schema=reader.schema).slice(0, n_rows)

    def _locate(self, why: str) -> DataError:
        import csv

        path = self.p["path"]
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.reader(f, delimiter=self.p["delimiter"], strict=True)
            try:
                width = len(next(reader))
                for row in reader:
                    if row and len(row) != width:
                        return DataError(f"{path}:{reader.line_num}: expected {width} fields, "
                                         f"found {len(row)}")
            except csv.Error as err:
                return DataError(f"{path}:{reader.line_num}: invalid CSV ({err})")
        return DataError(f"{path}: invalid CSV ({why.splitlines()[0]})")

    def infer_schema(self) -> Schema:
        df = self._read(INFER_ROWS)
        names = {"Int64": "int", "Float64": "float", "Boolean": "bool", "String": "str"}
        return Schema({c: names.get(str(t), "any") for c, t in df.schema.items()})

    def load(self, ctx: RunContext) -> pl.DataFrame:
        return self._read(None)


# -- load.disk --------------------------------------------------------------------------------
def _disk_data_files(path: str) -> list[str]:
    """The Arrow files of a dataset saved by `save_to_disk` (or our directory export)."""
    _require_dir(path)
    root = Path(path)
    state = root / "state.json"
    if not state.is_file():
        if (root / "dataset_dict.json").is_file():
            splits = json.loads((root / "dataset_dict.json").read_text()).get("splits", [])
            raise DataError(f"{path}: holds several splits ({', '.join(splits)}); load one "
                            f"of them, e.g. load.disk(\"{root.name}/{(splits or ['train'])[0]}\")")
        raise DataError(f"{path}: not a saved dataset (no state.json; expected the folder "
                        f"written by datasets' save_to_disk or a dcc directory export)")
    try:
        files = [root / d["filename"] for d in json.loads(state.read_text())["_data_files"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{state}: unreadable dataset state ({exc})") from None
    for f in files:
        _require_file(str(f))
    return [str(f) for f in files]


@register
class LoadDisk(Source):
    """Read a dataset folder saved by Hugging Face `save_to_disk` or by a dcc folder export.

    It reads the Arrow files listed in the folder's state.json, in order; a dcc export to a
    path without a file extension writes such a folder. A `DatasetDict` folder (several splits) is an error that names the splits; load one split
    folder instead. Types are those stored in the Arrow files. At compile time only the schema
    of the first file is read.

    Example:  raw = load.disk("data/alpaca_hf")
    """

    name = "load.disk"
    version = 1
    params = (P("path", "str", doc="dataset folder; relative to the recipe's folder",
                path=True, positional=True),)

    def files(self) -> list[str]:
        return _dir_files(self.p["path"]) if os.path.isdir(self.p["path"]) else [self.p["path"]]

    def infer_schema(self) -> Schema:
        import pyarrow as pa

        files = _disk_data_files(self.p["path"])
        if not files:
            return Schema({})
        with pa.memory_map(files[0]) as src:
            return _schema_of_arrow(pa.ipc.open_stream(src).schema)

    def load(self, ctx: RunContext) -> pl.DataFrame:
        import polars as pl
        import pyarrow as pa

        tables = []
        for f in _disk_data_files(self.p["path"]):
            try:
                with pa.memory_map(f) as src:
                    tables.append(pa.ipc.open_stream(src).read_all())
            except pa.ArrowInvalid as exc:
                raise DataError(f"{f}: not an Arrow stream file ({exc})") from None
        if not tables:
            return pl.DataFrame()
        return _from_arrow(pa.concat_tables(tables).combine_chunks())


# -- load.hf ----------------------------------------------------------------------------------
@register
class LoadHF(Source):
    """Load one split of a Hugging Face dataset (a Hub id or a local folder).

    It calls `datasets.load_dataset(name, split=..., revision=..., data_dir=...)`. `name` is a Hub id ("openai/gsm8k") or a local dataset folder (data files such as
    *.jsonl/*.parquet/*.csv, or a loading script's folder), given as an absolute path or
    relative to the current directory; it is used as written, not resolved against the
    recipe's folder (use load.jsonl/parquet/disk for files beside the recipe). A local folder
    is keyed by the content of every file under it; a Hub dataset only by its name and
    `revision`, so pin `revision` to a commit for builds that stay reproducible. Any failure
    of `load_dataset` (unknown dataset, no network, unknown split) is a data error. The
    compile-time schema is open (any column may exist).

    Example:  raw = load.hf("openai/gsm8k", data_dir="main", revision="e53f048")
    """

    name = "load.hf"
    version = 1
    params = (
        P("name", "str", doc="Hub dataset id or local dataset folder", positional=True),
        P("split", "str", "train", doc="the split to load"),
        P("revision", "str", None, doc="Hub git revision (branch, tag or commit)"),
        P("data_dir", "str", None, doc="data_dir argument of load_dataset (a subset folder)"),
    )

    def files(self) -> list[str]:
        name = self.p["name"]
        return _dir_files(os.path.abspath(name)) if os.path.isdir(name) else []

    def infer_schema(self) -> Schema:
        return Schema.unknown()

    def load(self, ctx: RunContext) -> pl.DataFrame:
        import datasets

        kwargs = {k: self.p[k] for k in ("split", "revision", "data_dir") if self.p[k] is not None}
        quiet = datasets.are_progress_bars_disabled()
        datasets.disable_progress_bars()  # the library never prints; the CLI shows progress
        try:
            ds = datasets.load_dataset(self.p["name"], **kwargs)
        except Exception as exc:  # datasets raises many kinds; all mean "could not load"
            raise DataError(f"load.hf: cannot load {self.p['name']!r} ({exc})") from exc
        finally:
            if not quiet:
                datasets.enable_progress_bars()
        if getattr(ds, "_indices", None) is not None:
            ds = ds.flatten_indices()
        return _from_arrow(ds.data.table)
