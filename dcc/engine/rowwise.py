"""Running a row-wise Python operator (`RowPython`) through the row memo.

Only rows the memo lacks are turned into dicts and sent to `process`, each distinct row once,
in batches whose results are committed as they come back (a build killed at 90% resumes at
90%). The output is the input's kept rows, with their columns untouched, plus the result
columns; a rebuild after 1% of new rows therefore does columnar work over the other 99%:
hashing (`dcc.engine.rowkeys`), one batched memo lookup and one JSON decode of the memoized
results by polars, never a Python dict per row.

Results of a memoized operator are always assembled from their JSON text, whether they were
just computed or read back, so a cold build and a rebuild type the same rows the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable

from dcc.cache.rowmemo import RowMemo
from dcc.engine.rowkeys import row_keys
from dcc.ops.base import RowPython, RunContext

if TYPE_CHECKING:
    import polars as pl

MEMO_BATCH = 64
_NULL = b"null"


# Computes the results of `op` for the rows of a table (the rows the memo lacks), yielding
# one list per batch of MEMO_BATCH consecutive rows, in order.
BatchRunner = Callable[[RowPython, "pl.DataFrame", RunContext], Iterator[list[Any]]]


def process_here(op: RowPython, todo: pl.DataFrame, ctx: RunContext) -> Iterator[list[Any]]:
    """Run `op.process` on each batch of `todo`'s rows in this process, in order (the local
    executor's way; the Ray executor sends the same batches to an actor pool)."""
    for start in range(0, todo.height, MEMO_BATCH):
        yield process_rows(op, todo.slice(start, MEMO_BATCH).to_dicts(), ctx)


def process_rows(op: RowPython, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
    """One batch through `op.process`, counting one model call per row for an expensive
    operator that does not count its own."""
    before = ctx.model_calls
    out = op.process(rows, ctx)
    if op.expensive and not ctx.calls_counted and ctx.model_calls == before:
        # the operator does not count its calls: count one per row sent
        ctx.model_calls += len(rows)
    return out


def run_rowpython(op: RowPython, df: pl.DataFrame, ctx: RunContext, memo: RowMemo | None,
                  runner: BatchRunner = process_here) -> pl.DataFrame:
    """`op` over every row of `df`: memoized results reused, the others computed by
    `runner` batch by batch, each batch's results committed as it comes back."""
    hashes = row_keys(op, df)
    found: dict[bytes, Any] = memo.get_raw(set(hashes)) if memo is not None else {}
    todo: dict[bytes, int] = {}
    for i, h in enumerate(hashes):
        if h not in found and h not in todo:
            todo[h] = i
    pending = list(todo.items())
    rows = df[[i for _, i in pending]] if pending else df.head(0)
    for k, out in enumerate(runner(op, rows, ctx) if pending else ()):
        start = k * MEMO_BATCH
        chunk = pending[start:start + MEMO_BATCH]
        if len(out) != len(chunk):
            raise ValueError(f"{op.name}: process() returned {len(out)} results for "
                             f"{len(chunk)} rows (it must return one per row)")
        for r in out:
            if r is not None and not isinstance(r, dict):
                raise ValueError(f"{op.name}: process() must return a dict (the columns it "
                                 f"writes) or None (drop the row) per row, got "
                                 f"{type(r).__name__}")
        if memo is not None:
            fresh = {h: json.dumps(r, sort_keys=True).encode() for (h, _), r in zip(chunk, out)}
            memo.put_raw(fresh)
        else:
            fresh = {h: r for (h, _), r in zip(chunk, out)}
        found.update(fresh)
        ctx.progress(min(start + MEMO_BATCH, len(pending)), len(pending))
    results = [found[h] for h in hashes]
    if memo is not None:
        return _attach_json(op, df, results)
    return _attach(op, df, [r is not None for r in results],
                   _frame([r for r in results if r is not None]))


def count_new_rows(op: RowPython, df: pl.DataFrame, memo: RowMemo) -> int:
    """How many distinct rows of `df` the memo lacks (what a run would send)."""
    hashes = list(set(row_keys(op, df)))
    return len(hashes) - memo.count_raw(hashes)


def _attach_json(op: RowPython, df: pl.DataFrame, results: list[bytes]) -> pl.DataFrame:
    """The kept rows of `df` with the result columns decoded from each row's JSON."""
    import polars as pl

    keep = [v != _NULL for v in results]
    texts = [v.decode("utf-8") for v in results if v != _NULL]
    if not texts:
        return _attach(op, df, keep, _frame([]))
    try:
        decoded = pl.Series("r", texts, dtype=pl.String).str.json_decode(
            infer_schema_length=None)
        if not isinstance(decoded.dtype, pl.Struct):
            raise ValueError(f"{op.name}: a memoized result is not a JSON object")
        res = decoded.struct.unnest()
    except pl.exceptions.PolarsError:  # values polars' JSON reader refuses (NaN, huge ints)
        res = _frame([json.loads(t) for t in texts])
    return _attach(op, df, keep, res)


def _frame(dicts: list[dict[str, Any]]) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(dicts, infer_schema_length=None)


def _attach(op: RowPython, df: pl.DataFrame, keep: list[bool],
            res: pl.DataFrame) -> pl.DataFrame:
    """`df`'s kept rows with `res` (one row per kept row) as columns: a column `df` has is
    replaced in place, new ones follow in `op.writes()` order, then by name."""
    import polars as pl

    if not any(keep):
        return df.head(0).with_columns(
            [pl.lit(None).alias(c) for c in op.writes() if c not in df.columns])
    kept = df if all(keep) else df.filter(pl.Series(keep))
    order = {c: i for i, c in enumerate(op.writes())}
    cols = sorted(res.columns, key=lambda c: (order.get(c, len(order)), c))
    return kept.with_columns([res.get_column(c) for c in cols])


__all__ = ["MEMO_BATCH", "BatchRunner", "count_new_rows", "process_here", "run_rowpython"]
