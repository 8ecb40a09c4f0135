"""Row hashes for the row memo, computed a column at a time.

A row is memoized under `dcc.cache.rowmemo.row_hash` of the dict of the columns its operator
reads: the xxh3-128 of that dict's canonical bytes (`dcc.cache.hashing.canonical_bytes`).
Building a dict and encoding it in Python costs ~3.5 us a row; a rebuild hashes every row of
its input, so for text, integer, boolean and null columns the same canonical bytes are built
here as one polars string expression over the whole column, and only the digest is taken per
row. The bytes are exactly those of `canonical_bytes` (the tests compare both on many
frames), so hashes do not depend on which path made them, nor on polars' or pyarrow's own
hash functions, which are not stable across versions. Other column types (floats, lists,
structs, dates) take the per-row path.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dcc.cache.hashing import canonical_bytes, digest
from dcc.cache.rowmemo import row_hash

if TYPE_CHECKING:
    import polars as pl


def read_columns(op: Any, df: pl.DataFrame) -> list[str]:
    """The columns a row's hash covers: what the operator reads, else every column."""
    return sorted(set(op.reads() or df.columns))


def row_keys(op: Any, df: pl.DataFrame) -> list[bytes]:
    """`row_hash` of each row's view {column: value} over `read_columns(op, df)`, as the 16
    bytes of the digest (what the memo table stores)."""
    return [bytes.fromhex(h) for h in row_hashes(op, df)]


def row_hashes(op: Any, df: pl.DataFrame) -> list[str]:
    """`row_hash` of each row's view {column: value} over `read_columns(op, df)`."""
    import polars as pl

    cols = read_columns(op, df)
    if all(df.schema.get(c) in (None, pl.Null) for c in cols):  # every value is null
        return [row_hash(dict.fromkeys(cols))] * df.height
    exprs = [_value_expr(c, df.schema.get(c)) for c in cols]
    if any(e is None for e in exprs):
        return [_row_key(cols, row) for row in
                df.select([c for c in cols if c in df.columns]).iter_rows(named=True)]
    parts: list[Any] = [pl.lit(b"d%d:" % len(cols))]
    for c, e in zip(cols, exprs):
        parts += [pl.lit(canonical_bytes(c)), e]
    enc = df.select(pl.concat_str([_text(p) for p in parts]).cast(pl.Binary)).to_series()
    return [digest(b) for b in enc.to_list()]


def _text(part: Any) -> Any:
    """A literal's bytes as a polars string literal (canonical bytes of str keys are UTF-8)."""
    import polars as pl

    return pl.lit(part.decode("utf-8")) if isinstance(part, bytes) else part


def _value_expr(col: str, dtype: Any) -> pl.Expr | None:
    """A string expression giving `canonical_bytes(value)` of each value of `col`, or None
    when its type needs the per-row path. A column the frame lacks reads as null."""
    import polars as pl

    if dtype is None or dtype == pl.Null:
        return pl.lit("N")
    c = pl.col(col)
    if dtype == pl.String:
        enc = pl.concat_str([pl.lit("s"), c.str.len_bytes().cast(pl.String), pl.lit(":"), c])
    elif dtype.is_integer():
        digits = c.cast(pl.String)
        enc = pl.concat_str([pl.lit("i"), digits.str.len_bytes().cast(pl.String), pl.lit(":"),
                             digits])
    elif dtype == pl.Boolean:
        enc = pl.when(c).then(pl.lit("T")).otherwise(pl.lit("F"))
    else:
        return None
    return pl.when(c.is_null()).then(pl.lit("N")).otherwise(enc)


def _row_key(cols: list[str], row: dict[str, Any]) -> str:
    """The per-row path (the definition the column path reproduces)."""
    view = {c: row.get(c) for c in cols}
    try:
        return row_hash(view)
    except TypeError:  # dates and other non-JSON values: a stable text form
        return row_hash(json.dumps(view, sort_keys=True, default=str))


__all__ = ["read_columns", "row_hashes", "row_keys"]
